import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { errorCodes, ProxyError, type AdminErrorCode } from '@ccproxy/core';
import { StoreError } from './store/resource-store.ts';
import { textProblems } from './text-rule.ts';

/**
 * One error shape for the whole API, `{ statusCode, error, message, problems? }`, made in one
 * place: react-admin shows `message`, and `problems` lists every JSON path that failed. The
 * codes are the `ADM_` part of the product's one code table (core/src/errors.ts, documented in
 * the README); `error` on the wire is the code without `ADM_`, lower-cased.
 */
type NameOf<C> = C extends `ADM_${infer Name}` ? Lowercase<Name> : never;
export type ErrorName = NameOf<AdminErrorCode>;

const codeByName = new Map(
  Object.keys(errorCodes)
    .filter((code): code is AdminErrorCode => code.startsWith('ADM_'))
    .map((code) => [code.slice('ADM_'.length).toLowerCase(), code]),
);

/** The one error body; also written on raw sockets (client-errors.ts), where no reply exists. */
export function errorBody(status: number, error: ErrorName, message: string, problems?: string[]) {
  if (!codeByName.has(error)) throw new Error(`admin error ${error} is not in core/src/errors.ts`);
  return { statusCode: status, error, message, ...(problems === undefined ? {} : { problems }) };
}

export function sendError(
  reply: FastifyReply,
  status: number,
  error: ErrorName,
  message: string,
  problems?: string[],
): FastifyReply {
  return reply
    .code(status)
    .type('application/json')
    .send(errorBody(status, error, message, problems));
}

/** The name of a status's code (the first, for 403), so a status and its name never disagree. */
const nameByStatus = new Map(
  [...codeByName].reverse().map(([name, code]) => [errorCodes[code].status as number, name as ErrorName]),
);

const nameOf = <C extends AdminErrorCode>(code: C) => code.slice('ADM_'.length).toLowerCase() as NameOf<C>;

/** An admin failure: a code of the one table (its status), a message, and the failing JSON paths. */
export class AdminError extends ProxyError {
  readonly adminCode: AdminErrorCode;
  readonly problems: string[] | undefined;
  constructor(code: AdminErrorCode, message?: string, problems?: string[]) {
    super(code, message);
    this.name = 'AdminError';
    this.adminCode = code;
    this.problems = problems;
  }
  /** `ADM_NOT_FOUND` → `not_found`. */
  get wireName(): ErrorName {
    return nameOf(this.adminCode);
  }
}

export const notFound = (what: string) => new AdminError('ADM_NOT_FOUND', `${what} not found`);
export const badRequest = (message: string, problems?: string[]) =>
  new AdminError('ADM_BAD_REQUEST', message, problems);
export const conflict = (message: string) => new AdminError('ADM_CONFLICT', message);

/**
 * Validation with typebox instead of fastify's default Ajv setup, which strips unknown
 * properties and coerces body types silently. Every string first passes the text rule
 * (text-rule.ts). Bodies get defaults but no conversion (a string
 * where a number belongs is a 400); query strings and path params are converted from strings
 * first (they have no types on the wire; `convertFlat`).
 */
export const typeboxValidator: FastifySchemaCompiler<TSchema> =
  ({ schema, httpPart }) =>
  (data: unknown) => {
    // `Type.Optional(...)` as a route body: no body at all is fine, a wrong one is not.
    if (
      httpPart === 'body' &&
      (data === undefined || data === null) &&
      (schema as { '~optional'?: boolean })['~optional'] === true
    )
      return { value: data };
    // The one text rule (no control characters, no lone surrogates), for every string field.
    const textual = textProblems(schema, data, httpPart ?? 'input');
    if (textual.length > 0) return { error: Object.assign(new Error(textual.join('; ')), { problems: textual }) };
    const withDefaults = Value.Default(schema, Value.Clone(data));
    const value = httpPart === 'body' ? withDefaults : convertFlat(schema, withDefaults);
    if (Value.Check(schema, value)) return { value };
    const problems = [...Value.Errors(schema, value)].map((error) => {
      const extra = (error.params as { additionalProperties?: string[] }).additionalProperties;
      return `${httpPart ?? 'input'}${error.instancePath || ''}: ${error.message}${extra === undefined ? '' : ` (${extra.join(', ')})`}`;
    });
    return { error: Object.assign(new Error(problems.join('; ')), { problems }) };
  };

type Schema = { type?: string; anyOf?: Schema[]; items?: Schema; properties?: Record<string, Schema> };

/**
 * Query strings and path params have no types on the wire: a number only from a numeric string,
 * a boolean only from `true`/`false`, anything else left as it is for the check to refuse
 * (typebox's Value.Convert would read `_start=true` as 1).
 */
function convertFlat(schema: TSchema, data: unknown): unknown {
  if (typeof data !== 'object' || data === null) return data;
  const properties = (schema as Schema).properties ?? {};
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, convertValue(properties[key], value)]));
}

function convertValue(schema: Schema | undefined, value: unknown): unknown {
  if (schema === undefined) return value;
  const options = [schema, ...(schema.anyOf ?? [])];
  if (Array.isArray(value)) {
    const items = options.find((option) => option.type === 'array')?.items;
    return items === undefined ? value : value.map((item: unknown) => convertValue(items, item));
  }
  if (typeof value !== 'string') return value;
  const types = new Set(options.map((option) => option.type));
  if (types.has('string')) return value;
  if ((types.has('integer') || types.has('number')) && /^-?\d{1,15}(\.\d{1,15})?$/.test(value)) return Number(value);
  if (types.has('boolean') && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

type NoRoute = (request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/** The router's limit on one path parameter (app.ts `maxParamLength`). */
export const maxPathSegment = 2048;
/** A path segment past the router's limit: the router gives up on the route, and this says why. */
export const uriTooLong = (reply: FastifyReply): FastifyReply =>
  sendError(reply, 414, 'uri_too_long', `A path segment is longer than ${maxPathSegment} characters.`);

const nonCanonicalPath =
  'No such route: the path is not in normal form (an empty segment `//`, a `.` or `..` segment, or a NUL character).';

/** The error handler and the not-found handler; returns the latter for `registerNoRouteAnswer`. */
export function registerErrorHandler(app: FastifyInstance, allowedMethods: (path: string) => string[]): NoRoute {
  app.setErrorHandler((error: FastifyError & { problems?: string[] }, request, reply) => {
    if (error instanceof AdminError)
      return sendError(reply, error.status, error.wireName, error.message, error.problems);
    if (error instanceof StoreError) {
      if (error.reason === 'conflict') return sendError(reply, 409, 'conflict', error.message);
      if (error.reason === 'not_found') return sendError(reply, 404, 'not_found', error.message);
      if (error.reason === 'invalid') return sendError(reply, 400, 'bad_request', error.message, [error.message]);
      request.log.error({ err: error }, 'resource store unavailable');
      return sendError(reply, 503, 'unavailable', error.message);
    }
    // Our typebox validator's errors carry `problems` (fastify marks them FST_ERR_VALIDATION).
    if (error.validation !== undefined || error.problems !== undefined) {
      const problems =
        error.problems ??
        (error.validation ?? []).map(
          (v) => `${error.validationContext ?? 'input'}${v.instancePath}: ${v.message ?? 'invalid'}`,
        );
      return sendError(
        reply,
        400,
        'bad_request',
        `Invalid ${error.validationContext ?? 'input'}: ${problems.join('; ')}`,
        problems,
      );
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return sendError(reply, 413, 'payload_too_large', 'Request body too large.');
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return sendError(reply, 415, 'unsupported_media_type', 'Send application/json.');
    if (error.statusCode === 429) return sendError(reply, 429, 'too_many_requests', error.message);
    // @fastify/static refuses a path not in normal form (`//`, a `.` segment, a NUL) with a 403:
    // no route and no file has such a path, and nothing was forbidden.
    if (error.code === 'FST_STATIC_FORBIDDEN_PATH') {
      const path = request.url.split('?', 1)[0] ?? '';
      if (path.split('/').some((segment) => segment.length > maxPathSegment)) return uriTooLong(reply);
      return sendError(reply, 404, 'not_found', nonCanonicalPath);
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Malformed JSON, empty JSON body and the like: fastify's own 4xx, in our shape; a status
      // without a code of its own is a 400.
      const name = nameByStatus.get(error.statusCode);
      return name === undefined
        ? sendError(reply, 400, 'bad_request', error.message)
        : sendError(reply, error.statusCode, name, error.message);
    }
    request.log.error({ err: error }, 'admin request failed');
    return sendError(reply, 500, 'internal', 'Internal error; see the admin log.');
  });
  const noRoute: NoRoute = (request, reply) => {
    const path = request.url.split('?', 1)[0] ?? '';
    // Past the limit no route can match, so without this a long id would be a plain 404 (or,
    // with the UI built, fall to the static files).
    if (path.split('/').some((segment) => segment.length > maxPathSegment)) return uriTooLong(reply);
    const allowed = allowedMethods(path);
    if (allowed.length === 0 || allowed.includes(request.method))
      return sendError(reply, 404, 'not_found', 'No such route.');
    return sendError(
      reply.header('Allow', allowed.join(', ')),
      405,
      'method_not_allowed',
      `${request.method} is not served here; use ${allowed.join(', ')}.`,
    );
  };
  app.setNotFoundHandler(noRoute);
  return noRoute;
}

/**
 * No route: answered in onRequest, before any body is read or parsed (fastify would otherwise
 * read it, or refuse a QUERY without Content-Type with a 400 instead of saying the method is
 * not served). Register after the auth hook: without a session, nothing under /admin/ says
 * whether a path exists.
 */
export function registerNoRouteAnswer(app: FastifyInstance, noRoute: NoRoute): void {
  app.addHook('onRequest', async (request, reply) => (request.is404 ? noRoute(request, reply) : undefined));
}
