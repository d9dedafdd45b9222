import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { RouteDeps } from '../app.ts';
import { badRequest, notFound } from '../errors.ts';
import { dnsLabel, dnsName, idParams, listQuery, sendPage, splitId, type ListQuery } from '../list.ts';
import { ownerOf } from '../store/ownership.ts';
import { StoreError } from '../store/resource-store.ts';
import { bedrockKeySpec } from '@ccproxy/operator';
import { bedrockKeyView } from './views.ts';

/** A Bedrock API key goes in, never comes out: answers carry only the operator's fingerprint. */
// Printable ASCII without spaces (Bedrock API keys are base64-like): no control character either.
const apiKey = Type.String({ minLength: 8, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' });
const registerKey = Type.Object(
  { namespace: dnsLabel, name: dnsName, accessKey: dnsName, apiKey, api: Type.Optional(bedrockKeySpec.properties.api) },
  { additionalProperties: false },
);
const rotateKey = Type.Object({ apiKey }, { additionalProperties: false });
const sortable = ['id', 'namespace', 'name', 'accessKey', 'ready', 'status'] as const;
const query = listQuery(
  {
    namespace: Type.Optional(dnsLabel),
    accessKeyId: Type.Optional(Type.String({ maxLength: 320 })),
    status: Type.Optional(Type.String({ maxLength: 20 })),
  },
  sortable,
);

export function registerBedrockKeyRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store } = deps;
  const tags = ['bedrock keys'];
  const load = async (id: string) => {
    const { namespace, name } = splitId(id);
    const key = await store.get('BedrockKey', namespace, name);
    if (key === undefined) throw notFound(`BedrockKey ${id}`);
    return key;
  };

  app.get('/admin/api/bedrock-keys', { schema: { tags, querystring: query } }, async (request, reply) => {
    const filters = request.query as Static<typeof query>;
    const rows = (await store.list('BedrockKey'))
      .map(bedrockKeyView)
      .filter(
        (key) =>
          (filters.namespace === undefined || key.namespace === filters.namespace) &&
          (filters.accessKeyId === undefined || key.accessKeyId === filters.accessKeyId) &&
          (filters.status === undefined || key.status === filters.status),
      );
    return sendPage(reply, 'bedrock-keys', rows, filters as ListQuery, sortable);
  });

  app.get('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams } }, async (request) =>
    bedrockKeyView(await load((request.params as Static<typeof idParams>).id)),
  );

  /** Register: the Secret with the API key, then the BedrockKey naming it (undone if the second write fails). */
  app.post('/admin/api/bedrock-keys', { schema: { tags, body: registerKey } }, async (request, reply) => {
    const body = request.body as Static<typeof registerKey>;
    if ((await store.get('AccessKey', body.namespace, body.accessKey)) === undefined)
      throw badRequest(`AccessKey ${body.namespace}/${body.accessKey} does not exist`, [
        'body/accessKey: no such AccessKey',
      ]);
    if ((await store.get('BedrockKey', body.namespace, body.name)) !== undefined)
      throw new StoreError('conflict', `BedrockKey ${body.namespace}/${body.name} already exists`);
    const secretName = `${body.name}-bedrock`.slice(0, 253);
    const owner = { kind: 'BedrockKey', name: body.name } as const;
    await store.writeSecret(body.namespace, secretName, { apiKey: body.apiKey }, owner);
    try {
      const created = await store.create('BedrockKey', body.namespace, body.name, {
        accessKeyRef: { name: body.accessKey },
        secretRef: { name: secretName, key: 'apiKey' },
        ...(body.api === undefined ? {} : { api: body.api }),
      });
      return await reply.code(201).send(bedrockKeyView(created));
    } catch (error) {
      await store.deleteSecret(body.namespace, secretName, owner).catch(() => undefined);
      throw error;
    }
  });

  /** Rotate: a new API key in the same Secret; the operator re-encrypts it. */
  app.put('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams, body: rotateKey } }, async (request) => {
    const current = await load((request.params as Static<typeof idParams>).id);
    const secretRef = (current.spec as { secretRef?: { name: string; key?: string } }).secretRef;
    if (secretRef === undefined)
      throw new StoreError(
        'conflict',
        `BedrockKey ${current.namespace}/${current.name} uses auth AwsIdentity: it has no API key to rotate`,
      );
    // A Secret the admin may not write is a 409 naming where it is managed, never a 200 that changes nothing.
    await store.writeSecret(
      current.namespace,
      secretRef.name,
      { [secretRef.key ?? 'apiKey']: (request.body as Static<typeof rotateKey>).apiKey },
      ownerOf(current),
    );
    return bedrockKeyView((await store.get('BedrockKey', current.namespace, current.name)) ?? current);
  });

  app.delete('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const current = await load((request.params as Static<typeof idParams>).id);
    await store.delete('BedrockKey', current.namespace, current.name);
    const secretRef = (current.spec as { secretRef?: { name: string } }).secretRef;
    if (secretRef !== undefined)
      await store.deleteSecret(current.namespace, secretRef.name, ownerOf(current)).catch(() => undefined);
    return bedrockKeyView(current);
  });
}
