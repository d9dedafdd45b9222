import { randomBytes } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { usageBreakdown } from '@ccproxy/core';
import { routing } from '@ccproxy/operator';
import { AdminError, conflict, notFound } from '../errors.ts';
import { derivedName, dnsName, idOf, listQuery, sendPage } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { linkedUser } from '../access/self-link.ts';
import type { Identity } from '../access/identity.ts';
import { baseUrlMaker, issueKey, rotateKey } from '../store/key-ops.ts';
import type { StoredResource } from '../store/resource-store.ts';
import { accessKeyView, userView } from './views.ts';

/**
 * Self-service: a person signed in with single sign-on manages the access keys of the one
 * ProxyUser linked to their identity (access/self-link.ts), within the limits the team admin set
 * on that ProxyUser (`spec.selfService`). Nothing here names a namespace or a user: both come
 * from the link, so no id a developer sends can reach another user's key (a key that is not
 * theirs is the same 404 as one that does not exist: no way to learn other keys' names). Every
 * write is in the audit trail with the person's identity and the key's namespace/name.
 */
const access = { access: 'developer' } as const;
const tags = ['self-service'];
const keyParams = Type.Object({ id: dnsName }, { additionalProperties: false });
/** The resource's routing values without its default: no routing sent means the policy's first mode. */
const routingChoice = Type.Union(routing.anyOf.map((mode) => Type.Literal(mode.const)));
const issueBody = Type.Optional(
  Type.Object({ routing: Type.Optional(routingChoice) }, { additionalProperties: false }),
);
const sortable = ['id', 'name', 'routing', 'revoked', 'status'] as const;
const keysQuery = listQuery({}, sortable);
const usageDays = 30;
/** A key named `<user>-<8 hex>` keeps at most 180 characters of the user's name (its Secret adds `-key`). */
const keyNameLength = 189;

type Routing = Static<typeof routing>;
type Policy = { enabled: boolean; maxKeys: number; routingModes: Routing[] };
/** Keys of a user, revoked ones included, that self-service issues up to: this times maxKeys. */
const revokedKeysFactor = 10;

/** The team admin's limits; no `spec.selfService` is self-service off (the defaults are the schema's). */
function policyOf(user: StoredResource<'ProxyUser'>): Policy {
  const set = user.spec.selfService;
  return {
    enabled: set?.enabled ?? false,
    maxKeys: set?.maxKeys ?? 3,
    routingModes: set?.routingModes ?? ['PlanWithFailover', 'PlanOnly'],
  };
}

/** A refusal naming the limit (the ProxyUser field) and its value. */
const limitRefusal = (user: StoredResource<'ProxyUser'>, field: string, message: string) =>
  new AdminError('ADM_SELF_SERVICE_LIMIT', `${message} (ProxyUser ${idOf(user.namespace, user.name)} ${field}).`, [
    `spec.selfService.${field.split('.').at(-1) ?? field}`,
  ]);

export const selfServiceRoutes: RoutePlugin = async (app, { store, db, config }) => {
  const baseUrlFor = baseUrlMaker(config.publicUrl);
  /**
   * A user's issues run one at a time, so requests sent at once cannot all pass the maxKeys count
   * before any key exists. Per admin replica: the chart runs one (README, self-service).
   */
  const issuing = new Map<string, Promise<unknown>>();
  const oneAtATime = <T>(userId: string, work: () => Promise<T>): Promise<T> => {
    const next = (issuing.get(userId) ?? Promise.resolve()).catch(() => undefined).then(work);
    issuing.set(userId, next);
    next
      .finally(() => {
        if (issuing.get(userId) === next) issuing.delete(userId);
      })
      .catch(() => undefined);
    return next;
  };

  /** The linked user, recorded as the audit row's namespace before anything can be refused. */
  const me = async (request: { identity?: Identity | undefined; auditTarget?: AuditTarget }) => {
    // Every /admin/api route has a session by now (auth.ts); none is refused like a link that is missing.
    if (request.identity === undefined) throw new AdminError('ADM_UNAUTHORIZED', 'Log in first: no session.');
    const user = await linkedUser(store, request.identity);
    request.auditTarget = { kind: 'AccessKey', namespace: user.namespace, name: null };
    return user;
  };
  const keysOf = async (user: StoredResource<'ProxyUser'>) =>
    (await store.list('AccessKey')).filter(
      (key) => key.namespace === user.namespace && key.spec.userRef.name === user.name,
    );
  /** One of the user's keys by name; another user's key is "not found", exactly like a missing one. */
  const ownKey = async (user: StoredResource<'ProxyUser'>, name: string) => {
    const key = await store.get('AccessKey', user.namespace, name);
    if (key === undefined || key.spec.userRef.name !== user.name) throw notFound(`Access key ${name} of yours`);
    return key;
  };
  const enabledFor = (user: StoredResource<'ProxyUser'>) => {
    if (!policyOf(user).enabled)
      throw limitRefusal(
        user,
        'selfService.enabled',
        'Self-service is off for you: your team admin has not enabled it',
      );
  };

  app.get('/admin/api/my/profile', { config: access, schema: { tags } }, async (request) => {
    const user = await me(request);
    const keys = await keysOf(user);
    const { budget, rateLimits, ...view } = userView(user);
    return {
      user: { ...view, budget, rateLimits },
      selfService: policyOf(user),
      activeKeys: keys.filter((key) => key.spec.revoked !== true).length,
    };
  });

  app.get(
    '/admin/api/my-keys',
    { config: access, schema: { tags, querystring: keysQuery } },
    async (request, reply) => {
      const user = await me(request);
      const rows = (await keysOf(user)).map((key) => {
        const view = accessKeyView(key);
        return { ...view, id: key.name, key: view.id };
      });
      return sendPage(reply, 'my-keys', rows, request.query, sortable);
    },
  );

  app.post('/admin/api/my-keys', { config: access, schema: { tags, body: issueBody } }, async (request, reply) => {
    const user = await me(request);
    enabledFor(user);
    const policy = policyOf(user);
    const chosen: Routing = request.body?.routing ?? policy.routingModes[0] ?? 'PlanWithFailover';
    if (!policy.routingModes.includes(chosen))
      throw limitRefusal(
        user,
        'selfService.routingModes',
        `Routing ${chosen} is not allowed for your keys; allowed: ${policy.routingModes.join(', ')}`,
      );
    const issued = await oneAtATime(idOf(user.namespace, user.name), async () => {
      const all = await keysOf(user);
      const active = all.filter((key) => key.spec.revoked !== true);
      if (active.length >= policy.maxKeys)
        throw limitRefusal(
          user,
          'selfService.maxKeys',
          `You already hold ${active.length} active keys, the most your team admin allows (${policy.maxKeys}); revoke one first`,
        );
      // Revoked keys stay as resources (their usage history is theirs): without a bound, an
      // issue-and-revoke loop could create objects without end.
      const kept = policy.maxKeys * revokedKeysFactor;
      if (all.length >= kept)
        throw limitRefusal(
          user,
          'selfService.maxKeys',
          `You have ${all.length} keys, revoked ones included, the most self-service keeps (${revokedKeysFactor} × maxKeys = ${kept}); ask your team admin to delete revoked keys`,
        );
      const name = derivedName(user.name, randomBytes(4).toString('hex'), keyNameLength);
      request.auditTarget = { kind: 'AccessKey', namespace: user.namespace, name };
      const key = await issueKey(
        store,
        baseUrlFor,
        { namespace: user.namespace, name },
        { userRef: { name: user.name }, routing: chosen, revoked: false },
      );
      return { key, name };
    });
    return reply.code(201).send({ ...issued.key, id: issued.name, key: issued.key.id });
  });

  app.post(
    '/admin/api/my-keys/:id/rotate',
    { config: access, schema: { tags, params: keyParams } },
    async (request) => {
      const user = await me(request);
      request.auditTarget = { kind: 'AccessKey', namespace: user.namespace, name: request.params.id };
      enabledFor(user);
      const key = await ownKey(user, request.params.id);
      if (key.spec.revoked === true) throw conflict(`Access key ${key.name} is revoked; issue a new one instead`);
      const rotated = await rotateKey(store, baseUrlFor, key);
      return { ...rotated, id: key.name, key: rotated.id };
    },
  );

  /** Revoking is always allowed, even with self-service off: a developer can always kill a leaked key. */
  app.post(
    '/admin/api/my-keys/:id/revoke',
    { config: access, schema: { tags, params: keyParams } },
    async (request) => {
      const user = await me(request);
      request.auditTarget = { kind: 'AccessKey', namespace: user.namespace, name: request.params.id };
      const key = await ownKey(user, request.params.id);
      const updated = await store.update(
        'AccessKey',
        key.namespace,
        key.name,
        { ...key.spec, revoked: true },
        key.resourceVersion,
      );
      const view = accessKeyView(updated);
      return { ...view, id: key.name, key: view.id };
    },
  );

  /** The user's usage and cost per key over the last 30 days (the same roll-ups and prices as the admin's). */
  app.get('/admin/api/my-usage', { config: access, schema: { tags } }, async (request, reply) => {
    const user = await me(request);
    const to = Date.now();
    const rows = await usageBreakdown(db, {
      by: 'key',
      bucket: 'day',
      from: to - usageDays * 86_400_000,
      to,
      user: { namespace: user.namespace, name: user.name },
    });
    const byKey = new Map<string, { id: string; requests: number; totalTokens: number; costUsd: number }>();
    for (const row of rows) {
      const entry = byKey.get(row.group) ?? { id: row.group, requests: 0, totalTokens: 0, costUsd: 0 };
      entry.requests += row.requests;
      entry.totalTokens += row.totalTokens;
      entry.costUsd += row.costMicroUsd / 1_000_000;
      byKey.set(row.group, entry);
    }
    return reply.send({ days: usageDays, keys: [...byKey.values()] });
  });
};

export interface AuditTarget {
  kind: string;
  namespace: string | null;
  name: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What a write changed, when the path does not say (self-service: the key of the linked user). */
    auditTarget?: AuditTarget;
  }
}
