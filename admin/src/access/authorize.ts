import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AdminError } from '../errors.ts';
import { allows, type Grants, type Identity } from './identity.ts';

/**
 * The one place that decides what a signed-in role may do, for every API route, before its
 * handler runs (a `preHandler`: params, query and body are parsed and validated by then). Route
 * files know nothing of roles. What a request touches is read from the request itself:
 * - a path id `namespace/name` (every read, change, rotate, revoke or delete of one resource);
 * - a body `namespace` (every create);
 * - a query `namespace`, or `userId` / `accessKeyId` (`namespace/name`) on the usage routes;
 * - a list without any of these is narrowed to the session's namespaces after the handler
 *   (`narrowLists`), with its page and Content-Range recomputed;
 * - a route naming no namespace at all (one added later and not described here) is refused to
 *   a scoped role: deny by default. A route can say `config: { access: 'self' }` when its
 *   handler applies the scope itself (the audit trail).
 * `admin` passes everything; `viewer` passes reads; `team-admin` passes reads and writes inside
 * its namespaces; `developer` passes only the self-service routes (`config: { access:
 * 'developer' }`, self-service.ts), whose handlers act on the one ProxyUser linked to the
 * identity, and those routes pass anyone in a developer group whatever their role (the link
 * decides there); to everyone else they are like any route (a viewer's write is refused).
 * Routes saying `config: { access: 'admin' }` (the admin sessions) pass the `admin` role only.
 * Refusals are 403 JSON naming the role, the namespace and what is allowed.
 */
const listRoutes = new Set([
  '/admin/api/users',
  '/admin/api/access-keys',
  '/admin/api/bedrock-keys',
  '/admin/api/team-budgets',
  '/admin/api/breakers',
]);

const namespaceFilterRoutes = new Set(['/admin/api/usage', '/admin/api/usage/summary']);

/** Reads of no namespace's data (the price table): open to every signed-in role. */
const unscopedReads = new Set(['/admin/api/prices']);

interface Narrowing {
  namespaces: string[];
  start: number;
  end: number;
}

export function registerAuthorization(app: FastifyInstance): void {
  // A read-only role is refused every write before its body is even validated: a viewer learns
  // nothing from a write's 400s and gets the same 403 whatever it sends.
  app.addHook('preValidation', async (request) => {
    const identity = request.identity;
    if (identity === undefined || !(request.routeOptions.url ?? '').startsWith('/admin/api/')) return;
    // Self-service routes decide by the identity's linked ProxyUser; a developer gets nothing else.
    if (selfServiceRoute(request, identity)) return;
    if (identity.role === 'developer')
      throw forbidden(
        identity,
        `may use only its own keys (My keys), not ${request.method} ${request.routeOptions.url}`,
      );
    const write = identity.grants.write;
    const safe = request.method === 'GET' || request.method === 'HEAD';
    if (!safe && write !== 'all' && write.length === 0)
      throw forbidden(identity, 'is read-only: it may not change anything');
    // Admin-only routes (the Sessions list and ending sessions): every other role is refused.
    if (accessOf(request) === 'admin' && identity.role !== 'admin')
      throw forbidden(identity, `may not use ${request.method} ${request.routeOptions.url}: only the admin role may`);
  });
  app.addHook('preHandler', async (request) => {
    const identity = request.identity;
    const url = request.routeOptions.url ?? '';
    if (identity === undefined || !url.startsWith('/admin/api/') || selfServiceRoute(request, identity)) return;
    const mode = request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
    const scope = identity.grants[mode];
    if (scope === 'all') return;
    if (mode === 'read' && unscopedReads.has(url)) return;
    if (accessOf(request) === 'self') return;
    // Every namespace the request names must be the session's (a list filter and a userId of
    // another namespace together must not slip through on the first one).
    const named = namespacesOf(request);
    const outside = named.find((namespace) => !allows(identity.grants, mode, namespace));
    if (outside !== undefined)
      throw forbidden(
        identity,
        `may not ${mode === 'read' ? 'read' : 'change'} resources in namespace ${outside}`,
        identity.grants,
      );
    if (named.length > 0) return;
    if (mode === 'read' && listRoutes.has(url)) {
      const query = request.query as { _start: number; _end: number };
      request.narrowing = { namespaces: scope, start: query._start, end: query._end };
      // The whole list, narrowed and paged again after the handler.
      request.query = { ...query, _start: 0, _end: 1_000_000 };
      return;
    }
    // Routes that take a `namespace` filter: a session scoped to one namespace gets it filled in.
    if (mode === 'read' && namespaceFilterRoutes.has(url) && scope.length === 1) {
      request.query = { ...(request.query as object), namespace: scope[0] };
      return;
    }
    throw forbidden(
      identity,
      `may not use ${request.method} ${url} without naming a namespace of its own`,
      identity.grants,
    );
  });

  app.addHook('preSerialization', async (request, reply, payload) => {
    const narrowing = request.narrowing;
    if (narrowing === undefined || !Array.isArray(payload)) return payload;
    const rows = (payload as Array<{ namespace?: unknown; id?: unknown }>).filter((row) =>
      narrowing.namespaces.includes(rowNamespace(row)),
    );
    const page = rows.slice(narrowing.start, narrowing.end);
    const resource = String(reply.getHeader('content-range') ?? 'items').split(' ')[0];
    const last = page.length === 0 ? narrowing.start : narrowing.start + page.length - 1;
    reply.header('Content-Range', `${resource} ${narrowing.start}-${last}/${rows.length}`);
    return page;
  });
}

/** A self-service route, asked by someone in a developer group (anyone else: the role's own rules). */
function selfServiceRoute(request: FastifyRequest, identity: Identity): boolean {
  return identity.selfService && accessOf(request) === 'developer';
}

/** A route's own access rule: 'self' (its handler scopes by grants), 'developer' (self-service). */
function accessOf(request: FastifyRequest): string | undefined {
  return (request.routeOptions.config as { access?: string } | undefined)?.access;
}

function rowNamespace(row: { namespace?: unknown; id?: unknown }): string {
  if (typeof row.namespace === 'string') return row.namespace;
  return typeof row.id === 'string' ? (row.id.split('/')[0] ?? '') : '';
}

/** Every namespace a request names (path id, body, query filters); empty when it names none. */
function namespacesOf(request: FastifyRequest): string[] {
  const params = request.params as Record<string, unknown> | undefined;
  const body = request.body as Record<string, unknown> | undefined | null;
  const query = request.query as Record<string, unknown> | undefined;
  const fromId = (value: unknown) =>
    typeof value === 'string' && value.includes('/') ? value.split('/')[0] : undefined;
  const plain = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const named = [
    fromId(params?.id),
    plain(body?.namespace),
    plain(query?.namespace),
    fromId(query?.userId),
    fromId(query?.accessKeyId),
  ];
  return [...new Set(named.filter((namespace): namespace is string => namespace !== undefined))];
}

function forbidden(identity: Identity, what: string, grants?: Grants): AdminError {
  const scope =
    grants === undefined
      ? ''
      : ` (it may change: ${grants.write === 'all' ? 'everything' : grants.write.join(', ') || 'nothing'})`;
  return new AdminError('ADM_FORBIDDEN', `Role ${identity.role} of ${identity.email ?? identity.sub} ${what}${scope}.`);
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity;
    narrowing?: Narrowing;
  }
}
