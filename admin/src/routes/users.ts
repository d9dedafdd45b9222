import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { RouteDeps } from '../app.ts';
import { HttpError, notFound } from '../errors.ts';
import { dnsLabel, dnsName, idOf, idParams, listQuery, sendPage, splitId, type ListQuery } from '../list.ts';
import { limitFields, limitUpdateFields, mergeSpec } from './limits.ts';
import { accessKeyView, userView } from './views.ts';
import { multiLine, singleLine } from '@ccproxy/operator';

const userFields = {
  // The resource's own text rules: a single-line name, a multi-line description.
  displayName: Type.Optional(singleLine({ maxLength: 200 })),
  description: Type.Optional(multiLine({ maxLength: 2000 })),
  suspended: Type.Optional(Type.Boolean()),
};
const createUser = Type.Object(
  { namespace: dnsLabel, name: dnsName, ...userFields, ...limitFields },
  { additionalProperties: false },
);
/** `resourceVersion` is the one read: a stale one gets 409. */
const updateUser = Type.Object(
  { resourceVersion: Type.String({ minLength: 1, maxLength: 100 }), ...userFields, ...limitUpdateFields },
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

export function registerUserRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store } = deps;
  const tags = ['users'];

  app.get('/admin/api/users', { schema: { tags, querystring: userQuery } }, async (request, reply) => {
    const query = request.query as Static<typeof userQuery>;
    const rows = (await store.list('ProxyUser'))
      .map(userView)
      .filter(
        (user) =>
          (query.namespace === undefined || user.namespace === query.namespace) &&
          (query.suspended === undefined || user.suspended === query.suspended) &&
          (query.ready === undefined || user.ready === query.ready) &&
          (query.status === undefined || user.status === query.status),
      );
    return sendPage(reply, 'users', rows, query as ListQuery, sortable);
  });

  app.get('/admin/api/users/:id', { schema: { tags, params: idParams } }, async (request) => {
    const { namespace, name } = splitId((request.params as Static<typeof idParams>).id);
    const user = await store.get('ProxyUser', namespace, name);
    if (user === undefined) throw notFound(`ProxyUser ${namespace}/${name}`);
    // The detail page lists the user's keys without a second round trip.
    const keys = (await store.list('AccessKey')).filter(
      (key) => key.namespace === namespace && (key.spec as { userRef: { name: string } }).userRef.name === name,
    );
    return { ...userView(user), accessKeys: keys.map(accessKeyView) };
  });

  app.post('/admin/api/users', { schema: { tags, body: createUser } }, async (request, reply) => {
    const body = request.body as Static<typeof createUser>;
    const created = await store.create('ProxyUser', body.namespace, body.name, {
      displayName: body.displayName ?? '',
      description: body.description ?? '',
      suspended: body.suspended ?? false,
      ...(body.budget === undefined ? {} : { budget: body.budget }),
      ...(body.rateLimits === undefined ? {} : { rateLimits: body.rateLimits }),
    });
    return reply.code(201).send(userView(created));
  });

  app.put('/admin/api/users/:id', { schema: { tags, params: idParams, body: updateUser } }, async (request) => {
    const { namespace, name } = splitId((request.params as Static<typeof idParams>).id);
    const body = request.body as Static<typeof updateUser>;
    const current = await store.get('ProxyUser', namespace, name);
    if (current === undefined) throw notFound(`ProxyUser ${namespace}/${name}`);
    const { resourceVersion, ...changes } = body;
    const spec = mergeSpec(current.spec, changes);
    return userView(await store.update('ProxyUser', namespace, name, spec, resourceVersion));
  });

  app.delete('/admin/api/users/:id', { schema: { tags, params: idParams } }, async (request) => {
    const { namespace, name } = splitId((request.params as Static<typeof idParams>).id);
    const user = await store.get('ProxyUser', namespace, name);
    if (user === undefined) throw notFound(`ProxyUser ${namespace}/${name}`);
    const keys = (await store.list('AccessKey')).filter(
      (key) => key.namespace === namespace && (key.spec as { userRef: { name: string } }).userRef.name === name,
    );
    // Refuse rather than leave access keys pointing at a user that is gone.
    if (keys.length > 0)
      throw new HttpError(
        409,
        'conflict',
        `ProxyUser ${idOf(namespace, name)} still has access keys: ${keys.map((key) => key.name).join(', ')}; delete them first`,
      );
    await store.delete('ProxyUser', namespace, name);
    return userView(user);
  });
}
