import { Type } from 'typebox';
import { limitFields, limitUpdateFields, mergeSpec } from './limits.ts';
import { identitySpec, multiLine, selfServiceSpec, singleLine } from '@ccproxy/operator';
import { conflict } from '../errors.ts';
import { dnsLabel, dnsName, idOf, idParams, listQuery, sendPage, splitId } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { loadOr404 } from '../store/resource-ops.ts';
import type { ResourceStore } from '../store/resource-store.ts';
import { accessKeyView, userView } from './views.ts';

const userFields = {
  // The resource's own text rules: a single-line name, a multi-line description.
  displayName: Type.Optional(singleLine({ maxLength: 200 })),
  description: Type.Optional(multiLine({ maxLength: 2000 })),
  suspended: Type.Optional(Type.Boolean()),
};
/** Self-service: who the user is at the identity provider, and what they may do to their own keys. */
const selfServiceFields = {
  identity: Type.Optional(identitySpec),
  selfService: Type.Optional(selfServiceSpec),
};
const selfServiceUpdateFields = {
  identity: Type.Optional(Type.Union([identitySpec, Type.Null()])),
  selfService: Type.Optional(Type.Union([selfServiceSpec, Type.Null()])),
};
const createUser = Type.Object(
  { namespace: dnsLabel, name: dnsName, ...userFields, ...limitFields, ...selfServiceFields },
  { additionalProperties: false },
);
/** `resourceVersion` is the one read: a stale one gets 409. */
const updateUser = Type.Object(
  {
    resourceVersion: Type.String({ minLength: 1, maxLength: 100 }),
    ...userFields,
    ...limitUpdateFields,
    ...selfServiceUpdateFields,
  },
  { additionalProperties: false },
);
const sortable = ['id', 'namespace', 'name', 'displayName', 'suspended', 'ready', 'status'] as const;
const userQuery = listQuery(
  {
    namespace: Type.Optional(dnsLabel),
    suspended: Type.Optional(Type.Boolean()),
    ready: Type.Optional(Type.String({ maxLength: 10 })),
    status: Type.Optional(Type.String({ maxLength: 20 })),
  },
  sortable,
);

/** The user's access keys. */
const keysOf = async (store: ResourceStore, namespace: string, name: string) =>
  (await store.list('AccessKey')).filter((key) => key.namespace === namespace && key.spec.userRef.name === name);

export const userRoutes: RoutePlugin = async (app, { store }) => {
  const tags = ['users'];

  app.get('/admin/api/users', { schema: { tags, querystring: userQuery } }, async (request, reply) => {
    const { query } = request;
    const rows = (await store.list('ProxyUser'))
      .map(userView)
      .filter(
        (user) =>
          (query.namespace === undefined || user.namespace === query.namespace) &&
          (query.suspended === undefined || user.suspended === query.suspended) &&
          (query.ready === undefined || user.ready === query.ready) &&
          (query.status === undefined || user.status === query.status),
      );
    return sendPage(reply, 'users', rows, query, sortable);
  });

  app.get('/admin/api/users/:id', { schema: { tags, params: idParams } }, async (request) => {
    const user = await loadOr404(store, 'ProxyUser', splitId(request.params.id));
    // The detail page lists the user's keys without a second round trip.
    const keys = await keysOf(store, user.namespace, user.name);
    return { ...userView(user), accessKeys: keys.map(accessKeyView) };
  });

  app.post('/admin/api/users', { schema: { tags, body: createUser } }, async (request, reply) => {
    const { body } = request;
    const created = await store.create('ProxyUser', body.namespace, body.name, {
      displayName: body.displayName ?? '',
      description: body.description ?? '',
      suspended: body.suspended ?? false,
      ...(body.budget === undefined ? {} : { budget: body.budget }),
      ...(body.rateLimits === undefined ? {} : { rateLimits: body.rateLimits }),
      ...(body.identity === undefined ? {} : { identity: body.identity }),
      ...(body.selfService === undefined ? {} : { selfService: body.selfService }),
    });
    return reply.code(201).send(userView(created));
  });

  app.put('/admin/api/users/:id', { schema: { tags, params: idParams, body: updateUser } }, async (request) => {
    const current = await loadOr404(store, 'ProxyUser', splitId(request.params.id));
    const { resourceVersion, ...changes } = request.body;
    const spec = mergeSpec(current.spec, changes);
    return userView(await store.update('ProxyUser', current.namespace, current.name, spec, resourceVersion));
  });

  app.delete('/admin/api/users/:id', { schema: { tags, params: idParams } }, async (request) => {
    const user = await loadOr404(store, 'ProxyUser', splitId(request.params.id));
    const keys = await keysOf(store, user.namespace, user.name);
    // Refuse rather than leave access keys pointing at a user that is gone.
    if (keys.length > 0)
      throw conflict(
        `ProxyUser ${idOf(user.namespace, user.name)} still has access keys: ${keys.map((key) => key.name).join(', ')}; delete them first`,
      );
    await store.delete('ProxyUser', user.namespace, user.name);
    return userView(user);
  });
};
