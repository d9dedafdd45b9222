import { Type } from 'typebox';
import { readBreakerSummaries, type BreakerSummary } from '@ccproxy/core';
import { accessKeySpec, routing } from '@ccproxy/operator';
import { badRequest, conflict } from '../errors.ts';
import { dnsLabel, dnsName, idOf, idParams, listQuery, sendPage, splitId } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { ownerOf } from '../store/ownership.ts';
import { loadOr404 } from '../store/resource-ops.ts';
import { baseUrlMaker, issueKey, rotateKey } from '../store/key-ops.ts';
import { limitFields, limitUpdateFields, mergeSpec } from './limits.ts';
import { accessKeyView } from './views.ts';

const bedrockSchema = accessKeySpec.properties.bedrock;
const issueBody = Type.Object(
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

export const accessKeyRoutes: RoutePlugin = async (app, deps) => {
  const { store, db, config } = deps;
  const policy = { openMs: deps.breakerOpenMs ?? 30 * 60_000, windowMs: deps.breakerWindowMs ?? 60_000 };
  const tags = ['access keys'];
  const baseUrlFor = baseUrlMaker(config.publicUrl);
  /** Breaker rows by `namespace/name` (core/src/db/breaker-reads.ts). */
  const readBreakers = async () =>
    new Map(
      (await readBreakerSummaries(db, policy)).map(({ namespace, name, ...breaker }) => [
        idOf(namespace, name),
        breaker,
      ]),
    );
  type Breakers = Map<string, Omit<BreakerSummary, 'namespace' | 'name'>>;

  const withBreaker = (view: ReturnType<typeof accessKeyView>, breakers: Breakers) => {
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

  app.get('/admin/api/access-keys', { schema: { tags, querystring: keyQuery } }, async (request, reply) => {
    const { query } = request;
    const breakers = await readBreakers();
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
    return sendPage(reply, 'access-keys', rows, query, sortable);
  });

  app.get('/admin/api/access-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const key = await loadOr404(store, 'AccessKey', splitId(request.params.id));
    return withBreaker(accessKeyView(key), await readBreakers());
  });

  /**
   * Issue: the admin generates the key, writes it into the Secret the AccessKey names (the
   * operator adopts it) and shows it in this answer only; the Secret goes again if the
   * AccessKey cannot be written (writeWithSecret).
   */
  app.post('/admin/api/access-keys', { schema: { tags, body: issueBody } }, async (request, reply) => {
    const { body } = request;
    if ((await store.get('ProxyUser', body.namespace, body.user)) === undefined)
      throw badRequest(`ProxyUser ${body.namespace}/${body.user} does not exist`, ['body/user: no such ProxyUser']);
    const issued = await issueKey(
      store,
      baseUrlFor,
      { namespace: body.namespace, name: body.name },
      {
        userRef: { name: body.user },
        routing: body.routing ?? 'PlanWithFailover',
        ...(body.bedrock === undefined ? {} : { bedrock: body.bedrock }),
        ...(body.budget === undefined ? {} : { budget: body.budget }),
        ...(body.rateLimits === undefined ? {} : { rateLimits: body.rateLimits }),
        revoked: false,
      },
    );
    return reply.code(201).send(issued);
  });

  app.put('/admin/api/access-keys/:id', { schema: { tags, params: idParams, body: updateKey } }, async (request) => {
    const current = await loadOr404(store, 'AccessKey', splitId(request.params.id));
    const { resourceVersion, ...changes } = request.body;
    const spec = mergeSpec(current.spec, changes);
    const updated = await store.update('AccessKey', current.namespace, current.name, spec, resourceVersion);
    return withBreaker(accessKeyView(updated), await readBreakers());
  });

  app.post(
    '/admin/api/access-keys/:id/revoke',
    { schema: { tags, params: idParams, body: Type.Optional(versionBody) } },
    async (request) => {
      const current = await loadOr404(store, 'AccessKey', splitId(request.params.id));
      const version = request.body?.resourceVersion ?? current.resourceVersion;
      const spec = { ...current.spec, revoked: true };
      return accessKeyView(await store.update('AccessKey', current.namespace, current.name, spec, version));
    },
  );

  /** Rotate: a new key in the Secret; the operator keeps the old one valid for the grace period. */
  app.post(
    '/admin/api/access-keys/:id/rotate',
    { schema: { tags, params: idParams, body: Type.Optional(versionBody) } },
    async (request) => {
      const current = await loadOr404(store, 'AccessKey', splitId(request.params.id));
      const version = request.body?.resourceVersion;
      if (version !== undefined && version !== current.resourceVersion)
        throw conflict(`AccessKey ${current.namespace}/${current.name} was changed by someone else; reload and retry`);
      return rotateKey(store, baseUrlFor, current);
    },
  );

  app.delete('/admin/api/access-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const current = await loadOr404(store, 'AccessKey', splitId(request.params.id));
    // The operator revokes the key in Postgres before the resource is gone (finalizer / prune).
    await store.delete('AccessKey', current.namespace, current.name);
    // Only a Secret that is the admin's for this key goes with it; any other is left alone.
    await store.deleteSecret(current.namespace, current.spec.secretName, ownerOf(current)).catch(() => undefined);
    return accessKeyView(current);
  });

  app.get('/admin/api/breakers', { schema: { tags: ['usage'], querystring: breakerQuery } }, async (request, reply) => {
    const rows = [...(await readBreakers())].map(([id, breaker]) => ({ id, ...breaker }));
    return sendPage(reply, 'breakers', rows, request.query, breakerSortable);
  });
};
