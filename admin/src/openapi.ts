import type { FastifyInstance, RouteOptions } from 'fastify';
import { Type } from 'typebox';
import { singleLinePattern } from '@ccproxy/operator';
import { successResponses } from './routes/responses.ts';

/** The one error shape (errors.ts `sendError`), as the document shows it. */
export const errorReply = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String(),
    message: Type.String(),
    problems: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

const noQuery = Type.Object({}, { additionalProperties: false });
const bodyMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
type Schema = Record<string, unknown>;
type Linked = { links?: Record<number, Record<string, unknown>> };

/**
 * Keeps the OpenAPI document true by construction, for every route in one place (an `onRoute`
 * hook, registered before @fastify/swagger reads the routes):
 * - every /admin/ route without a query schema of its own gets the empty one (no parameters;
 *   an unknown one is a 400 naming it), so the document and the validator say the same;
 * - every API route's success answer comes from routes/responses.ts (a route without one is a
 *   startup error), and every error status the route can answer is declared with the error schema: 400 when anything
 *   is validated, 401 unless public, 404 for a route with an id, 409 for a write to a resource,
 *   413/415 when a body can be sent, 429 where rate-limited, 500 always, 503 where the resource
 *   store or the database is read (every guarded route: its session is checked in the database);
 * - a property with a default is not `required` (the validator fills it in before checking), as
 *   the CRDs already say (operator/src/crds.ts), and free strings show the text rule's pattern,
 *   so the document and the validator agree (`asDocumented`).
 */
export function registerOpenApiCompletion(app: FastifyInstance): AllowedMethods {
  const routes: Array<{ pattern: RegExp; methods: string[] }> = [];
  const created: Array<{ url: string; links: { 201: Record<string, unknown> } }> = [];
  const operations: Array<{ url: string; method: string }> = [];
  app.addHook('onRoute', (route) => {
    const url = route.url;
    for (const method of [route.method].flat()) operations.push({ url, method });
    if (url.startsWith('/admin/') && !url.includes('*'))
      routes.push({ pattern: new RegExp(`^${url.replace(/:[^/]+/g, '[^/]+')}$`), methods: [route.method].flat() });
    const schema = (route.schema ?? {}) as Schema;
    // Unknown query parameters are a 400 on every route, as on the lists: a route that declares
    // no query takes none (`?x=1` on a detail route was ignored, and said nothing was wrong).
    if (url.startsWith('/admin/') && schema.querystring === undefined) schema.querystring = noQuery;
    for (const part of ['body', 'querystring', 'params'] as const)
      if (schema[part] !== undefined) schema[part] = asDocumented(schema[part]);
    const declared = (schema.response as Schema | undefined) ?? successResponses[`${[route.method].flat()[0]} ${url}`];
    if (declared === undefined && url.startsWith('/admin/api/'))
      throw new Error(`${String(route.method)} ${url} has no success answer in admin/src/routes/responses.ts`);
    schema.response = { ...errorStatuses(route, schema), ...declared };
    route.schema = schema;
    if ((schema.response as Schema)[201] !== undefined)
      created.push({ url, links: ((route as Linked).links = { 201: {} }) });
  });
  // OpenAPI links from each create to the operations on what it created, filled once every route
  // is known; @fastify/swagger reads them when it renders the document. They let schemathesis's
  // stateful phase (and use_after_free / ensure_resource_availability) follow created ids.
  app.addHook('onReady', async () => {
    for (const { url, links } of created)
      for (const operation of operations.filter((o) => o.url.startsWith(`${url}/:id`) && o.method !== 'HEAD')) {
        const path = operation.url
          .replace(/:([a-z]+)/gi, '{$1}')
          .replaceAll('~', '~0')
          .replaceAll('/', '~1');
        const name = `${operation.method.toLowerCase()}${operation.url.slice(url.length).replace(/[^a-z]/gi, '_')}`;
        links[201][name] = {
          operationRef: `#/paths/${path}/${operation.method.toLowerCase()}`,
          parameters: { id: '$response.body#/id' },
        };
      }
  });
  // Answers are serialized as they are: the response schemas document them (and the schemathesis
  // run checks them), they never strip or coerce a field.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  return (path) => [...new Set(routes.filter((route) => route.pattern.test(path)).flatMap((route) => route.methods))];
}

/** The methods the API serves at a path (empty when none): an unserved method there is a 405 with `Allow`. */
export type AllowedMethods = (path: string) => string[];

function errorStatuses(route: RouteOptions, schema: Schema): Record<number, unknown> {
  const methods = [route.method].flat();
  const url = route.url;
  const config = (route.config ?? {}) as { public?: boolean; rateLimit?: unknown };
  const api = url.startsWith('/admin/api/');
  // 408: a stalled request (client-errors.ts); 431: Node refuses request heads over 16 KiB before
  // any route; 414: a path parameter past the router's limit.
  const statuses = [408, 431, 500];
  if (url.includes(':')) statuses.push(414);
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined) statuses.push(400);
  if (config.public !== true && url.startsWith('/admin/')) statuses.push(401);
  // The role rule (access/authorize.ts) and the cookie's CSRF header: 403 on any guarded API route.
  if (config.public !== true && url.startsWith('/admin/')) statuses.push(403);
  if (url.includes(':id')) statuses.push(404);
  if (api && methods.some((method) => method !== 'GET' && method !== 'HEAD')) statuses.push(409);
  if (methods.some((method) => bodyMethods.has(method))) statuses.push(400, 413, 415);
  if (config.rateLimit !== undefined) statuses.push(429);
  // The resource store or the database (API routes); the session check's database (every guarded route).
  if (api || (config.public !== true && url.startsWith('/admin/'))) statuses.push(503);
  return Object.fromEntries([...new Set(statuses)].sort().map((status) => [status, errorReply]));
}

/**
 * A deep copy that states the API's input rules in the schema itself: objects list as required
 * only the properties without a default, and every free string (no pattern, enum or format of its
 * own) carries the single-line text pattern the text rule enforces (text-rule.ts). Property
 * descriptors are copied as they are: typebox keeps its kind markers (`~kind`, `~optional`) as
 * non-enumerable properties, and `Value.Default` needs them.
 */
export function asDocumented<S>(schema: S): S {
  if (typeof schema !== 'object' || schema === null) return schema;
  if (Array.isArray(schema)) return schema.map(asDocumented) as S;
  const descriptors = Object.getOwnPropertyDescriptors(schema);
  for (const descriptor of Object.values(descriptors))
    if (typeof descriptor.value === 'object' && descriptor.value !== null)
      descriptor.value = asDocumented(descriptor.value);
  const copy = Object.create(Object.getPrototypeOf(schema) as object | null, descriptors) as Schema;
  const properties = copy.properties as Record<string, Schema> | undefined;
  if (Array.isArray(copy.required) && properties !== undefined) {
    const required = (copy.required as string[]).filter((name) => properties[name]?.default === undefined);
    if (required.length > 0) copy.required = required;
    else delete copy.required;
  }
  if (copy.type === 'string' && !['pattern', 'enum', 'const', 'format'].some((key) => key in copy))
    copy.pattern = singleLinePattern;
  return copy as S;
}
