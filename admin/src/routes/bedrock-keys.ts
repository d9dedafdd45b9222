import { Type } from 'typebox';
import { badRequest, conflict } from '../errors.ts';
import { derivedName, dnsLabel, dnsName, idParams, listQuery, sendPage, splitId } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { ownerOf } from '../store/ownership.ts';
import { bedrockKeySpec } from '@ccproxy/operator';
import { loadOr404, writeWithSecret } from '../store/resource-ops.ts';
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

export const bedrockKeyRoutes: RoutePlugin = async (app, { store }) => {
  const tags = ['bedrock keys'];

  app.get('/admin/api/bedrock-keys', { schema: { tags, querystring: query } }, async (request, reply) => {
    const filters = request.query;
    const rows = (await store.list('BedrockKey'))
      .map(bedrockKeyView)
      .filter(
        (key) =>
          (filters.namespace === undefined || key.namespace === filters.namespace) &&
          (filters.accessKeyId === undefined || key.accessKeyId === filters.accessKeyId) &&
          (filters.status === undefined || key.status === filters.status),
      );
    return sendPage(reply, 'bedrock-keys', rows, filters, sortable);
  });

  app.get('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams } }, async (request) =>
    bedrockKeyView(await loadOr404(store, 'BedrockKey', splitId(request.params.id))),
  );

  /** Register: the Secret with the API key, then the BedrockKey naming it (undone if the second write fails). */
  app.post('/admin/api/bedrock-keys', { schema: { tags, body: registerKey } }, async (request, reply) => {
    const { body } = request;
    if ((await store.get('AccessKey', body.namespace, body.accessKey)) === undefined)
      throw badRequest(`AccessKey ${body.namespace}/${body.accessKey} does not exist`, [
        'body/accessKey: no such AccessKey',
      ]);
    if ((await store.get('BedrockKey', body.namespace, body.name)) !== undefined)
      throw conflict(`BedrockKey ${body.namespace}/${body.name} already exists`);
    const secretName = derivedName(body.name, 'bedrock');
    const owner = { kind: 'BedrockKey', name: body.name } as const;
    const secret = { namespace: body.namespace, name: secretName, data: { apiKey: body.apiKey }, owner };
    const created = await writeWithSecret(store, secret, () =>
      store.create('BedrockKey', body.namespace, body.name, {
        accessKeyRef: { name: body.accessKey },
        auth: 'ApiKey',
        secretRef: { name: secretName, key: 'apiKey' },
        ...(body.api === undefined ? {} : { api: body.api }),
      }),
    );
    return reply.code(201).send(bedrockKeyView(created));
  });

  /** Rotate: a new API key in the same Secret; the operator re-encrypts it. */
  app.put('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams, body: rotateKey } }, async (request) => {
    const current = await loadOr404(store, 'BedrockKey', splitId(request.params.id));
    const { secretRef } = current.spec;
    if (secretRef === undefined)
      throw conflict(
        `BedrockKey ${current.namespace}/${current.name} uses auth AwsIdentity: it has no API key to rotate`,
      );
    // A Secret the admin may not write is a 409 naming where it is managed, never a 200 that changes nothing.
    await store.writeSecret(
      current.namespace,
      secretRef.name,
      { [secretRef.key]: request.body.apiKey },
      ownerOf(current),
    );
    return bedrockKeyView((await store.get('BedrockKey', current.namespace, current.name)) ?? current);
  });

  app.delete('/admin/api/bedrock-keys/:id', { schema: { tags, params: idParams } }, async (request) => {
    const current = await loadOr404(store, 'BedrockKey', splitId(request.params.id));
    await store.delete('BedrockKey', current.namespace, current.name);
    const { secretRef } = current.spec;
    if (secretRef !== undefined)
      await store.deleteSecret(current.namespace, secretRef.name, ownerOf(current)).catch(() => undefined);
    return bedrockKeyView(current);
  });
};
