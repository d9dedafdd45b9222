import { readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { findKeyByHash, insertUsage, recordPlanFailure, type UsageRecord } from '@ccproxy/core';
import { parseResource } from '@ccproxy/operator';
import { hashKey, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

let admin: LocalAdmin;
let headers: { authorization: string };

beforeAll(async () => {
  admin = await startLocalAdmin();
  headers = await admin.auth();
});
afterAll(async () => admin?.close());

const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
  admin.app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
const enc = encodeURIComponent;

/** Every YAML document in the folder must be one `kubectl apply` (and the operator) accepts. */
async function folderDocuments(): Promise<unknown[]> {
  const files = (await readdir(admin.manifestsDir, { recursive: true })).filter((file) => file.endsWith('.yaml'));
  const docs = await Promise.all(
    files.map(async (file) =>
      parseAllDocuments(await readFile(join(admin.manifestsDir, file), 'utf8')).map((doc) => doc.toJS() as unknown),
    ),
  );
  return docs.flat();
}

describe('admin REST facade over the manifests folder (local mode)', () => {
  it('creates a user as a YAML file the operator reconciles, and reads its status', async () => {
    const created = await call('POST', '/admin/api/users', {
      namespace: 'team-a',
      name: 'alice',
      displayName: 'Alice Kim',
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'team-a/alice', displayName: 'Alice Kim', suspended: false });
    const text = await readFile(join(admin.manifestsDir, 'team-a', 'proxyuser-alice.yaml'), 'utf8');
    expect(parseResource(parseAllDocuments(text)[0]?.toJS())).toHaveProperty('resource');
    const read = (await call('GET', `/admin/api/users/${enc('team-a/alice')}`)).json();
    expect(read).toMatchObject({ ready: 'True', accessKeys: [] });
    const [row] = await admin.db.query<{ display_name: string }>(
      "SELECT display_name FROM users WHERE namespace = 'team-a' AND name = 'alice'",
    );
    expect(row?.display_name).toBe('Alice Kim');
  });

  it('lists with ra-data-simple-rest paging, sorting and Content-Range', async () => {
    for (const name of ['bob', 'carol', 'dave'])
      expect((await call('POST', '/admin/api/users', { namespace: 'team-a', name })).statusCode).toBe(201);
    const page = await call('GET', '/admin/api/users?_sort=name&_order=DESC&_start=1&_end=3');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-range']).toBe('users 1-2/4');
    expect(page.headers['access-control-expose-headers']).toContain('Content-Range');
    expect((page.json() as Array<{ name: string }>).map((user) => user.name)).toEqual(['carol', 'bob']);
    // ra-data-simple-rest's own form: JSON sort, inclusive range, JSON filter.
    const simple = await call(
      'GET',
      `/admin/api/users?sort=${enc('["name","ASC"]')}&range=${enc('[0,1]')}&filter=${enc('{"namespace":"team-a"}')}`,
    );
    expect(simple.headers['content-range']).toBe('users 0-1/4');
    expect((simple.json() as Array<{ name: string }>).map((user) => user.name)).toEqual(['alice', 'bob']);
    const getMany = await call(
      'GET',
      `/admin/api/users?filter=${enc(JSON.stringify({ id: ['team-a/carol', 'team-a/dave'] }))}`,
    );
    expect((getMany.json() as Array<{ name: string }>).map((user) => user.name).sort()).toEqual(['carol', 'dave']);
    const many = await call('GET', `/admin/api/users?id=${enc('team-a/bob')}&id=${enc('team-a/dave')}`);
    expect((many.json() as Array<{ name: string }>).map((user) => user.name).sort()).toEqual(['bob', 'dave']);
  });

  it('issues a key shown exactly once, which the operator adopts into Postgres', async () => {
    const issued = await call('POST', '/admin/api/access-keys', {
      namespace: 'team-a',
      name: 'alice-laptop',
      user: 'alice',
    });
    expect(issued.statusCode).toBe(201);
    const body = issued.json() as { id: string; accessKey: string; baseUrl: string; keyPrefix: string };
    expect(body.accessKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(body.baseUrl).toBe(`http://proxy.test:8080/ak/${body.accessKey}`);
    const record = await findKeyByHash(admin.db, hashKey(body.accessKey));
    expect(record).toMatchObject({ namespace: 'team-a', name: 'alice-laptop' });
    // Never again: reads carry the prefix and status only.
    const read = await call('GET', `/admin/api/access-keys/${enc(body.id)}`);
    expect(read.body).not.toContain(body.accessKey);
    expect(read.json()).toMatchObject({
      ready: 'True',
      keyPrefix: body.keyPrefix,
      user: 'alice',
      userId: 'team-a/alice',
      breakerState: 'closed',
    });
    const list = await call('GET', `/admin/api/access-keys?userId=${enc('team-a/alice')}`);
    expect(list.body).not.toContain(body.accessKey);
    // The key lives in the data dir's Secret, not in the (often committed) manifests folder.
    for (const doc of await folderDocuments()) expect(JSON.stringify(doc)).not.toContain(body.accessKey);
    for (const doc of await folderDocuments()) expect(parseResource(doc)).toHaveProperty('resource');
  });

  it('round-trips bedrock.api (InvokeModel or Converse) through the file into Postgres; absent, it is InvokeModel', async () => {
    const issue = (name: string, bedrock: Record<string, unknown>) =>
      call('POST', '/admin/api/access-keys', { namespace: 'team-a', name, user: 'alice', bedrock });
    const bedrock = { region: 'us-east-1', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };
    const apis: Record<string, string | undefined> = {
      'alice-converse': 'Converse',
      'alice-invoke': 'InvokeModel',
      'alice-default': undefined,
    };
    for (const [name, api] of Object.entries(apis)) {
      const issued = await issue(name, api === undefined ? bedrock : { ...bedrock, api });
      expect(issued.statusCode).toBe(201);
      const body = issued.json() as { id: string; accessKey: string };
      const stored = api ?? 'InvokeModel';
      expect((await findKeyByHash(admin.db, hashKey(body.accessKey)))?.bedrock.api).toBe(stored);
      const read = (await call('GET', `/admin/api/access-keys/${enc(body.id)}`)).json() as {
        bedrock?: { api?: string };
      };
      expect(read.bedrock?.api ?? 'InvokeModel').toBe(stored);
      const text = await readFile(join(admin.manifestsDir, 'team-a', `accesskey-${name}.yaml`), 'utf8');
      // The file says what the key was given: an unset api stays unset (its BedrockKey's, else InvokeModel, decides).
      expect(text).not.toContain(`api: ${stored === 'Converse' ? 'InvokeModel' : 'Converse'}`);
      if (api !== undefined) expect(text).toContain(`api: ${api}`);
    }
    expect((await issue('alice-bogus', { ...bedrock, api: 'Invoke' })).statusCode).toBe(400);
  });

  it('rotates (the old key keeps its grace period) and revokes', async () => {
    const first = (
      await call('POST', '/admin/api/access-keys', {
        namespace: 'team-a',
        name: 'bob-ci',
        user: 'bob',
        routing: 'PlanOnly',
      })
    ).json() as { id: string; accessKey: string };
    const rotated = await call('POST', `/admin/api/access-keys/${enc(first.id)}/rotate`);
    expect(rotated.statusCode).toBe(200);
    const second = rotated.json() as { accessKey: string };
    expect(second.accessKey).not.toBe(first.accessKey);
    expect(await findKeyByHash(admin.db, hashKey(second.accessKey))).toBeDefined();
    expect((await findKeyByHash(admin.db, hashKey(first.accessKey)))?.validUntil).toBeDefined();
    const revoked = await call('POST', `/admin/api/access-keys/${enc(first.id)}/revoke`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ revoked: true, ready: 'False', readyReason: 'Revoked' });
    expect(await findKeyByHash(admin.db, hashKey(second.accessKey))).toBeUndefined();
  });

  it('refuses a stale edit with 409 and leaves the file as it was', async () => {
    const user = (await call('GET', `/admin/api/users/${enc('team-a/carol')}`)).json() as { resourceVersion: string };
    const first = await call('PUT', `/admin/api/users/${enc('team-a/carol')}`, {
      resourceVersion: user.resourceVersion,
      displayName: 'Carol 1',
    });
    expect(first.statusCode).toBe(200);
    const stale = await call('PUT', `/admin/api/users/${enc('team-a/carol')}`, {
      resourceVersion: user.resourceVersion,
      displayName: 'Carol 2',
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ error: 'conflict' });
    expect(await readFile(join(admin.manifestsDir, 'team-a', 'proxyuser-carol.yaml'), 'utf8')).toContain('Carol 1');
  });

  it('answers 404 for unknown ids and 409 for duplicates, writing nothing', async () => {
    expect((await call('GET', `/admin/api/users/${enc('team-a/nobody')}`)).statusCode).toBe(404);
    expect((await call('DELETE', `/admin/api/access-keys/${enc('team-a/nothing')}`)).statusCode).toBe(404);
    expect((await call('POST', `/admin/api/access-keys/${enc('team-z/none')}/rotate`)).statusCode).toBe(404);
    expect((await call('POST', '/admin/api/users', { namespace: 'team-a', name: 'alice' })).statusCode).toBe(409);
    const before = await folderDocuments();
    const orphan = await call('POST', '/admin/api/access-keys', {
      namespace: 'team-a',
      name: 'ghost-key',
      user: 'ghost',
    });
    expect(orphan.statusCode).toBe(400);
    expect(await folderDocuments()).toEqual(before);
    await expect(readdir(join(admin.dataDir, 'secrets', 'team-a'))).resolves.not.toContain('ghost-key-key.yaml');
    // A user with keys is not deleted out from under them.
    expect((await call('DELETE', `/admin/api/users/${enc('team-a/alice')}`)).statusCode).toBe(409);
  });

  it('shows a resource written in two files once, as the operator applies it: the first file’s copy', async () => {
    const copy = join(admin.manifestsDir, 'zz-copy.yaml');
    await writeFile(
      copy,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: alice, namespace: team-a }\nspec: { displayName: Impostor }\n',
    );
    try {
      const listed = (await call('GET', '/admin/api/users?_start=0&_end=100')).json() as Array<{
        id: string;
        displayName: string;
      }>;
      expect(listed.filter((user) => user.id === 'team-a/alice').map((user) => user.displayName)).toEqual([
        'Alice Kim',
      ]);
      expect((await call('GET', `/admin/api/users/${enc('team-a/alice')}`)).json()).toMatchObject({
        displayName: 'Alice Kim',
      });
    } finally {
      await unlink(copy);
    }
  });

  it('registers a Bedrock key: the Secret and the BedrockKey (with its default API), fingerprint but never the key in answers', async () => {
    const before = await folderDocuments();
    const wrongApi = await call('POST', '/admin/api/bedrock-keys', {
      namespace: 'team-a',
      name: 'alice-bedrock',
      accessKey: 'alice-laptop',
      apiKey: 'bedrock-api-key-abcdefghijklmnop',
      api: 'Invoke',
    });
    expect(wrongApi.statusCode).toBe(400);
    expect(await folderDocuments()).toEqual(before);
    const registered = await call('POST', '/admin/api/bedrock-keys', {
      namespace: 'team-a',
      name: 'alice-bedrock',
      accessKey: 'alice-laptop',
      apiKey: 'bedrock-api-key-abcdefghijklmnop',
      api: 'Converse',
    });
    expect(registered.statusCode).toBe(201);
    expect(registered.body).not.toContain('bedrock-api-key-abcdefghijklmnop');
    const read = (await call('GET', `/admin/api/bedrock-keys/${enc('team-a/alice-bedrock')}`)).json();
    expect(read).toMatchObject({ ready: 'True', accessKeyId: 'team-a/alice-laptop', api: 'Converse' });
    expect((read as { fingerprint: string }).fingerprint).toMatch(/\S+/);
    const [row] = await admin.db.query<{ fingerprint: string; api: string }>(
      "SELECT fingerprint, api FROM bedrock_keys WHERE namespace = 'team-a' AND name = 'alice-bedrock'",
    );
    expect(row?.fingerprint).toBe((read as { fingerprint: string }).fingerprint);
    expect(row?.api).toBe('Converse');
  });

  it('reports usage by bucket and provider, top users, failover share and breaker state', async () => {
    const [key] = await admin.db.query<{ id: string; user_id: string }>(
      "SELECT id::text, user_id::text FROM access_keys WHERE namespace = 'team-a' AND name = 'alice-laptop'",
    );
    const at = Date.parse('2026-11-30T10:15:00Z');
    const record = (id: string, provider: 'plan' | 'bedrock', failover: boolean, offsetMs: number): UsageRecord => ({
      requestId: id,
      occurredAt: at + offsetMs,
      userId: key?.user_id ?? null,
      accessKeyId: key?.id ?? null,
      provider,
      failover,
      modelRequested: 'claude-sonnet-4-5',
      modelServed: null,
      inputTokens: 100,
      outputTokens: 50,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      latencyMs: 10,
      ttfbMs: 5,
      status: 200,
      complete: true,
    });
    await insertUsage(admin.db, [
      record('r1', 'plan', false, 0),
      record('r2', 'bedrock', true, 60_000),
      record('r3', 'plan', false, 3_600_000),
    ]);
    const range = `from=${enc('2026-11-30T00:00:00Z')}&to=${enc('2026-11-30T23:59:59Z')}`;
    const series = await call('GET', `/admin/api/usage?${range}&bucket=hour`);
    expect(series.statusCode).toBe(200);
    expect(series.json()).toEqual([
      expect.objectContaining({
        bucketStart: '2026-11-30T10:00:00.000Z',
        provider: 'bedrock',
        requests: 1,
        totalTokens: 150,
      }),
      expect.objectContaining({ bucketStart: '2026-11-30T10:00:00.000Z', provider: 'plan', requests: 1 }),
      expect.objectContaining({ bucketStart: '2026-11-30T11:00:00.000Z', provider: 'plan', requests: 1 }),
    ]);
    const daily = (
      await call('GET', `/admin/api/usage?${range}&bucket=day&userId=${enc('team-a/alice')}`)
    ).json() as Array<{ requests: number }>;
    expect(daily.reduce((sum, row) => sum + row.requests, 0)).toBe(3);
    expect((await call('GET', `/admin/api/usage?${range}&userId=${enc('team-a/bob')}`)).json()).toEqual([]);
    const summary = (await call('GET', `/admin/api/usage/summary?${range}`)).json();
    expect(summary).toMatchObject({
      requests: 3,
      failovers: 1,
      topUsers: [{ userId: 'team-a/alice', totalTokens: 450 }],
    });
    expect((summary as { failoverShare: number }).failoverShare).toBeCloseTo(1 / 3);

    for (let i = 0; i < 3; i += 1)
      await recordPlanFailure(admin.db, key?.id ?? '', { failures: 3, windowMs: 60_000, openMs: 60_000 });
    const detail = (await call('GET', `/admin/api/access-keys/${enc('team-a/alice-laptop')}`)).json();
    expect(detail).toMatchObject({ breakerState: 'open', consecutiveFailures: 3 });
    const breakers = await call('GET', '/admin/api/breakers');
    expect(breakers.json()).toEqual([expect.objectContaining({ id: 'team-a/alice-laptop', state: 'open' })]);
  });

  it('deletes a key: the operator revokes and removes its row', async () => {
    const issued = (
      await call('POST', '/admin/api/access-keys', { namespace: 'team-a', name: 'dave-tmp', user: 'dave' })
    ).json() as { id: string; accessKey: string };
    expect(await findKeyByHash(admin.db, hashKey(issued.accessKey))).toBeDefined();
    expect((await call('DELETE', `/admin/api/access-keys/${enc(issued.id)}`)).statusCode).toBe(200);
    expect(await findKeyByHash(admin.db, hashKey(issued.accessKey))).toBeUndefined();
    expect((await call('GET', `/admin/api/access-keys/${enc(issued.id)}`)).statusCode).toBe(404);
  });

  it('generates an OpenAPI document from the route schemas', async () => {
    const doc = (await admin.app.inject({ method: 'GET', url: '/admin/openapi.json' })).json() as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/admin/auth/login',
        '/admin/api/users',
        '/admin/api/users/{id}',
        '/admin/api/access-keys/{id}/rotate',
        '/admin/api/usage/summary',
      ]),
    );
  });
});
