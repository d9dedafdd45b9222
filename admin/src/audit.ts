import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { auditSortable, insertAudit, readAudit, type AuditEntry, type Queryable } from '@ccproxy/core';
import type { Identity } from './access/identity.ts';
import { listQuery, pageOf, sendSqlPage } from './list.ts';
import { isoTime } from './iso-time.ts';

/** Where audit entries go: the admin's database (admin_audit, core/src/db/audit-rows.ts). */
export interface AuditSink {
  db: Queryable;
}

interface Recorded {
  identity?: Identity;
  actorMethod?: AuditEntry['actorMethod'];
  actorSubject?: string;
  action: string;
  resourceKind?: string | null;
  namespace?: string | null;
  name?: string | null;
  outcome: AuditEntry['outcome'];
  status: number;
  detail?: string | null;
}

/**
 * Writes one entry. Awaited before the answer goes out, so a 200 was recorded; a database that
 * refuses the write is logged loudly (the change itself already happened and cannot be undone).
 * Nothing secret is ever passed in: identities, resource names, statuses, error messages.
 */
export async function audit(sink: AuditSink, request: FastifyRequest, entry: Recorded): Promise<void> {
  const identity = entry.identity;
  const row: AuditEntry = {
    actorMethod: identity?.method ?? entry.actorMethod ?? 'anonymous',
    actorSubject: (identity?.sub ?? entry.actorSubject ?? '').slice(0, 300),
    actorEmail: identity?.email ?? null,
    actorRole: identity?.role ?? null,
    action: entry.action,
    resourceKind: entry.resourceKind ?? null,
    namespace: entry.namespace ?? null,
    name: entry.name ?? null,
    outcome: entry.outcome,
    status: entry.status,
    detail: entry.detail?.slice(0, 500) ?? null,
    requestId: request.id,
  };
  try {
    await insertAudit(sink.db, row);
  } catch (error) {
    request.log.error({ err: error, action: row.action, outcome: row.outcome }, 'admin audit entry NOT recorded');
  }
}

/** The kind each API collection writes (admin/test/audit-kinds.test.ts: one for every kind). */
const kinds: Record<string, string> = {
  users: 'ProxyUser',
  'access-keys': 'AccessKey',
  'bedrock-keys': 'BedrockKey',
  'team-budgets': 'TeamBudget',
  'my-keys': 'AccessKey',
  sessions: 'AdminSession',
};

/** create / update / delete / rotate / revoke / suspend / unsuspend, from the route and body alone. */
function actionOf(method: string, url: string, body: Record<string, unknown> | null): string {
  const last = url.split('/').at(-1) ?? '';
  if (method === 'POST' && (last === 'rotate' || last === 'revoke')) return last;
  if (method === 'POST') return url.endsWith('s') ? 'create' : last;
  if (method === 'DELETE') return 'delete';
  if (body?.revoked === true) return 'revoke';
  if (body?.suspended === true) return 'suspend';
  return 'update';
}

/**
 * Every API write, whatever route file serves it (one hook, so a route added later is recorded
 * too), with its outcome: success, failure (4xx/5xx) or denied (403 by the role rule).
 */
export function registerAuditTrail(app: FastifyInstance, sink: AuditSink): void {
  app.addHook('onSend', async (request, reply, payload) => {
    const url = request.routeOptions.url ?? '';
    if (request.method === 'GET' || request.method === 'HEAD' || !url.startsWith('/admin/api/')) return payload;
    if (request.identity === undefined) return payload;
    const body = (typeof request.body === 'object' ? request.body : null) as Record<string, unknown> | null;
    const params = (request.params ?? {}) as Record<string, unknown>;
    const target = request.auditTarget;
    const [namespace, name] =
      target !== undefined
        ? [target.namespace ?? undefined, target.name ?? undefined]
        : typeof params.id === 'string' && params.id.includes('/')
          ? params.id.split('/', 2)
          : [body?.namespace, body?.name].map((value) => (typeof value === 'string' ? value : undefined));
    // A request refused before its handler (denied) names its target from the route alone.
    const sessionTarget = url.startsWith('/admin/api/sessions/') ? (params.id ?? body?.subject) : undefined;
    const status = reply.statusCode;
    await audit(sink, request, {
      identity: request.identity,
      action: actionOf(request.method, url, body),
      resourceKind: target?.kind ?? kinds[url.split('/')[3] ?? ''] ?? url.split('/')[3] ?? null,
      namespace: namespace ?? null,
      name: name ?? (typeof sessionTarget === 'string' ? sessionTarget : null),
      outcome: status < 400 ? 'success' : status === 403 ? 'denied' : 'failure',
      status,
      detail: status < 400 ? null : messageOf(payload),
    });
    return payload;
  });
}

function messageOf(payload: unknown): string | null {
  if (typeof payload !== 'string') return null;
  try {
    const message = (JSON.parse(payload) as { message?: unknown }).message;
    return typeof message === 'string' ? message : null;
  } catch {
    return null;
  }
}

const auditQuery = listQuery(
  {
    from: Type.Optional(isoTime),
    to: Type.Optional(isoTime),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z-]+$' })),
    resourceKind: Type.Optional(Type.String({ minLength: 1, maxLength: 40, pattern: '^[A-Za-z-]+$' })),
    namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')])),
  },
  auditSortable,
);

/**
 * `GET /admin/api/audit`: newest first, filterable, paged like the other lists (Content-Range).
 * A team admin sees the entries of its namespaces only (the route applies its own scope).
 */
export function registerAuditRoute(app: FastifyInstance, sink: AuditSink): void {
  app
    .withTypeProvider<TypeBoxTypeProvider>()
    .get(
      '/admin/api/audit',
      { schema: { tags: ['audit'], querystring: auditQuery }, config: { access: 'self' } },
      async (request, reply) => {
        const { query } = request;
        const page = pageOf(query);
        const read = request.identity?.grants.read ?? [];
        const wanted = query.namespace === undefined ? undefined : [query.namespace];
        const namespaces = read === 'all' ? wanted : (wanted ?? read).filter((namespace) => read.includes(namespace));
        const { rows, total } = await readAudit(
          sink.db,
          {
            ...(query.from === undefined ? {} : { from: new Date(query.from) }),
            ...(query.to === undefined ? {} : { to: new Date(query.to) }),
            ...(query.actor === undefined ? {} : { actor: query.actor }),
            ...(query.action === undefined ? {} : { action: query.action }),
            ...(query.resourceKind === undefined ? {} : { resourceKind: query.resourceKind }),
            ...(query.outcome === undefined ? {} : { outcome: query.outcome }),
            ...(namespaces === undefined ? {} : { namespaces }),
            ...(query.q === undefined || query.q === '' ? {} : { text: query.q }),
            ...(query.id === undefined ? {} : { ids: [query.id].flat() }),
          },
          page,
        );
        return sendSqlPage(reply, 'audit', page.start, rows, total);
      },
    );
}
