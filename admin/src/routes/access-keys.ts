import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { breakerStateOf, generateAccessKey, keyPrefix, type BreakerPolicy, type Queryable } from '@ccproxy/core';
import { accessKeySpec, routing } from '@ccproxy/operator';
import type { RouteDeps } from '../app.ts';
import { badRequest, notFound } from '../errors.ts';
import { dnsLabel, dnsName, idOf, idParams, listQuery, sendPage, splitId, type ListQuery } from '../list.ts';
import { ownerOf } from '../store/ownership.ts';
import { StoreError } from '../store/resource-store.ts';
import { limitFields, limitUpdateFields, mergeSpec } from './limits.ts';
import { accessKeyView } from './views.ts';

const bedrockSchema = accessKeySpec.properties.bedrock;
const issueKey = Type.Object(
  {
    namespace: dnsLabel,
    name: dnsName,
    user: dnsName,
    routing: Type.Optional(routing),
    bedrock: bedrockSchema,
    ...limitFields,
  },
  { additionalProperties: false },
);
const updateKey = Type.Object(
  {
    resourceVersion: Type.String({ minLength: 1, maxLength: 100 }),
    routing: Type.Optional(routing),
    bedrock: bedrockSchema,
    revoked: Type.Optional(Type.Boolean()),
    ...limitUpdateFields,
  },
  { additionalProperties: false },
);
const versionBody = Type.Object(
  { resourceVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) },
  { additionalProperties: false },
);
const sortable = ['id', 'namespace', 'name', 'user', 'routing', 'revoked', 'ready', 'status', 'breakerState'] as const;
const keyQuery = listQuery(
  {
    namespace: Type.Optional(dnsLabel),
    userId: Type.Optional(Type.String({ maxLength: 320 })),
    revoked: Type.Optional(Type.Boolean()),
    breakerState: Type.Optional(Type.String({ maxLength: 20 })),
    status: Type.Optional(Type.String({ maxLength: 20 })),
  },
  sortable,
);
/** What the breaker list sorts by (the handler's list; the schema states it so a wrong one is a 400 up front). */
const breakerSortable = ['id', 'state', 'consecutiveFailures', 'openedAt', 'lastFailoverAt', 'lastFailedFailoverAt'];
const breakerQuery = listQuery({}, breakerSortable);

interface BreakerInfo {
  state: string;
  consecutiveFailures: number;
  openedAt: string | null;
  /** The last failover Bedrock answered. */
  lastFailoverAt: string | null;
  /** The last failover attempt when Bedrock did not answer it (shown apart, never as a failover). */
  lastFailedFailoverAt: string | null;
}

/** Breaker rows by `namespace/name`, straight from Postgres: shared by every proxy replica, so current. */
export async function readBreakers(
  db: Queryable,
  policy: Pick<BreakerPolicy, 'openMs' | 'windowMs'>,
): Promise<Map<string, BreakerInfo>> {
  const rows = await db.query<{
    namespace: string;
    name: string;
    consecutive_failures: number;
    streak_started_at: Date | null;
    opened_at: Date | null;
    trial_started_at: Date | null;
    last_failover_at: Date | null;
    served: boolean;
  }>(
    // The breaker row stamps a failover when it is tried; Bedrock answered it when a Bedrock
    // failover usage row was written at or after that moment (rows are written at the end of
    // the request). An index range scan on token_usage (access_key_id, occurred_at).
    `SELECT k.namespace, k.name, b.consecutive_failures, b.streak_started_at, b.opened_at, b.trial_started_at, b.last_failover_at,
            EXISTS (SELECT 1 FROM token_usage u
                     WHERE u.access_key_id = k.id AND u.occurred_at >= b.last_failover_at
                       AND u.failover AND u.provider = 'bedrock') AS served
       FROM circuit_breakers b JOIN access_keys k ON k.id = b.access_key_id`,
  );
  const now = Date.now();
  return new Map(
    rows.map((row) => [
      idOf(row.namespace, row.name),
      {
        state: breakerStateOf(
          {
            consecutiveFailures: row.consecutive_failures,
            streakStartedAt: row.streak_started_at?.getTime() ?? null,
            openedAt: row.opened_at?.getTime() ?? null,
            trialStartedAt: row.trial_started_at?.getTime() ?? null,
            lastFailoverAt: row.last_failover_at?.getTime() ?? null,
          },
          policy,
          now,
        ),
        consecutiveFailures: row.consecutive_failures,
        openedAt: row.opened_at?.toISOString() ?? null,
        lastFailoverAt: row.served ? (row.last_failover_at?.toISOString() ?? null) : null,
        lastFailedFailoverAt: row.served ? null : (row.last_failover_at?.toISOString() ?? null),
      },
    ]),
  );
}

export function registerAccessKeyRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store, db, config } = deps;
  const policy = { openMs: deps.breakerOpenMs ?? 30 * 60_000, windowMs: deps.breakerWindowMs ?? 60_000 };
  const tags = ['access keys'];
  const baseUrlFor = (key: string) => `${config.publicUrl.replace(/\/+$/, '')}/ak/${key}`;

  const withBreaker = (view: ReturnType<typeof accessKeyView>, breakers: Map<string, BreakerInfo>) => {
    const breaker = breakers.get(view.id);
    return breaker === undefined
      ? { ...view, consecutiveFailures: 0, lastFailedFailoverAt: null }
      : {
          ...view,
          breakerState: breaker.state,
          lastFailoverAt: breaker.lastFailoverAt,
          lastFailedFailoverAt: breaker.lastFailedFailoverAt,
          consecutiveFailures: breaker.consecutiveFailures,
        };
  };
  const load = async (id: string) => {
    const { namespace, name } = splitId(id);
    const key = await store.get('AccessKey', namespace, name);
    if (key === undefined) throw notFound(`AccessKey ${id}`);
    return key;
  };

  app.get('/admin/api/access-keys', { schema: { tags, querystring: keyQuery } }, async (request, reply) => {
    const query = request.query as Static<typeof keyQuery>;
    const breakers = await readBreakers(db, policy);
    const rows = (await store.list('AccessKey'))
      .map((key) => withBreaker(accessKeyView(key), breakers))
      .filter(
        (key) =>
          (query.namespace === undefined || key.namespace === query.namespace) &&
          (query.userId === undefined || key.userId === query.userId) &&
          (query.revoked === undefined || key.revoked === query.revoked) &&
          (query.breakerState === undefined || key.breakerState === query.breakerState) &&
          (query.status === undefined || key.status === query.status),
      );
    return sendPage(reply, 'access-keys', rows, query as ListQuery, sortable);
  });

  app.get('/admin/api/access-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const key = await load((request.params as Static<typeof idParams>).id);
    return withBreaker(accessKeyView(key), await readBreakers(db, policy));
  });

  /**
   * Issue: the admin generates the key, writes it into the Secret the AccessKey names (the
   * operator adopts it) and shows it in this answer only. Secret first, then the AccessKey; if
   * the second write fails the Secret is removed again, so nothing is left half-written.
   */
  app.post('/admin/api/access-keys', { schema: { tags, body: issueKey } }, async (request, reply) => {
    const body = request.body as Static<typeof issueKey>;
    if ((await store.get('ProxyUser', body.namespace, body.user)) === undefined)
      throw badRequest(`ProxyUser ${body.namespace}/${body.user} does not exist`, ['body/user: no such ProxyUser']);
    if ((await store.get('AccessKey', body.namespace, body.name)) !== undefined)
      throw new StoreError('conflict', `AccessKey ${body.namespace}/${body.name} already exists`);
    const secretName = `${body.name}-key`.slice(0, 253);
    const key = generateAccessKey();
    // Never another's Secret: a name in use is a 409 naming its owner (ownership.ts).
    const owner = { kind: 'AccessKey', name: body.name } as const;
    await store.writeSecret(body.namespace, secretName, { accessKey: key, ANTHROPIC_BASE_URL: baseUrlFor(key) }, owner);
    const spec = {
      userRef: { name: body.user },
      secretName,
      routing: body.routing ?? 'PlanWithFailover',
      ...(body.bedrock === undefined ? {} : { bedrock: body.bedrock }),
      ...(body.budget === undefined ? {} : { budget: body.budget }),
      ...(body.rateLimits === undefined ? {} : { rateLimits: body.rateLimits }),
      revoked: false,
    };
    let created;
    try {
      created = await store.create('AccessKey', body.namespace, body.name, spec);
    } catch (error) {
      await store.deleteSecret(body.namespace, secretName, owner).catch(() => undefined);
      throw error;
    }
    return reply
      .code(201)
      .send({ ...accessKeyView(created), keyPrefix: keyPrefix(key), accessKey: key, baseUrl: baseUrlFor(key) });
  });

  app.put('/admin/api/access-keys/:id', { schema: { tags, params: idParams, body: updateKey } }, async (request) => {
    const current = await load((request.params as Static<typeof idParams>).id);
    const { resourceVersion, ...changes } = request.body as Static<typeof updateKey>;
    const updated = await store.update(
      'AccessKey',
      current.namespace,
      current.name,
      mergeSpec(current.spec, changes),
      resourceVersion,
    );
    return withBreaker(accessKeyView(updated), await readBreakers(db, policy));
  });

  app.post(
    '/admin/api/access-keys/:id/revoke',
    { schema: { tags, params: idParams, body: Type.Optional(versionBody) } },
    async (request) => {
      const current = await load((request.params as Static<typeof idParams>).id);
      const version =
        (request.body as Static<typeof versionBody> | undefined)?.resourceVersion ?? current.resourceVersion;
      const updated = await store.update(
        'AccessKey',
        current.namespace,
        current.name,
        { ...current.spec, revoked: true },
        version,
      );
      return accessKeyView(updated);
    },
  );

  /** Rotate: a new key in the Secret; the operator keeps the old one valid for the grace period. */
  app.post(
    '/admin/api/access-keys/:id/rotate',
    { schema: { tags, params: idParams, body: Type.Optional(versionBody) } },
    async (request) => {
      const current = await load((request.params as Static<typeof idParams>).id);
      const version = (request.body as Static<typeof versionBody> | undefined)?.resourceVersion;
      if (version !== undefined && version !== current.resourceVersion)
        throw new StoreError(
          'conflict',
          `AccessKey ${current.namespace}/${current.name} was changed by someone else; reload and retry`,
        );
      const key = generateAccessKey();
      // A Secret the admin may not write (hand-written, another's) is a 409, never a 200 that changes nothing.
      await store.writeSecret(
        current.namespace,
        (current.spec as { secretName: string }).secretName,
        { accessKey: key, ANTHROPIC_BASE_URL: baseUrlFor(key) },
        ownerOf(current),
      );
      return { ...accessKeyView(current), keyPrefix: keyPrefix(key), accessKey: key, baseUrl: baseUrlFor(key) };
    },
  );

  app.delete('/admin/api/access-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const current = await load((request.params as Static<typeof idParams>).id);
    // The operator revokes the key in Postgres before the resource is gone (finalizer / prune).
    await store.delete('AccessKey', current.namespace, current.name);
    // Only a Secret that is the admin's for this key goes with it; any other is left alone.
    await store
      .deleteSecret(current.namespace, (current.spec as { secretName: string }).secretName, ownerOf(current))
      .catch(() => undefined);
    return accessKeyView(current);
  });

  app.get('/admin/api/breakers', { schema: { tags: ['usage'], querystring: breakerQuery } }, async (request, reply) => {
    const breakers = await readBreakers(db, policy);
    const rows = [...breakers].map(([id, breaker]) => ({ id, ...breaker }));
    return sendPage(reply, 'breakers', rows, request.query as ListQuery, breakerSortable);
  });
}
