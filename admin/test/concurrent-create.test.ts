import { randomBytes } from 'node:crypto';
import { readFile, utimes, writeFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyByHash, type Database } from '@ccproxy/core';
import { adminConfig, readObject, uniqueName } from '../../operator/test/kube-fixture.ts';
import { hashKey, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { startKubeAdmin, type KubeAdmin } from './kube-admin-fixture.ts';

type Call = (
  method: 'GET' | 'POST',
  url: string,
  payload?: Record<string, unknown>,
) => Promise<{ statusCode: number; body: string; json(): unknown }>;

/**
 * Two requests creating the same resource: one wins, the others get a 409 and write nothing, so
 * the winner's key is the one in its Secret (seen: four identical issues gave a 201 whose key the
 * proxy refused, and four registers a 201 whose Secret the losers' undo had deleted).
 */
function concurrentCreates(
  setup: () => {
    call: Call;
    namespace: string;
    secretData: (name: string) => Promise<Record<string, string> | undefined>;
    db: () => Database;
  },
) {
  it('four identical issues at once: one 201 whose key is the Secret’s and is served, three 409s', async () => {
    const { call, namespace, secretData, db } = setup();
    const name = `race-${randomBytes(3).toString('hex')}`;
    await call('POST', '/admin/api/users', { namespace, name: `${name}-u` });
    const answers = await Promise.all(
      [0, 1, 2, 3].map(() =>
        call('POST', '/admin/api/access-keys', { namespace, name, user: `${name}-u`, routing: 'PlanOnly' }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409, 409, 409]);
    const won = answers.find((a) => a.statusCode === 201)?.json() as { accessKey: string };
    expect((await secretData(`${name}-key`))?.accessKey).toBe(won.accessKey);
    await expect
      .poll(async () => (await findKeyByHash(db(), hashKey(won.accessKey)))?.name, { timeout: 15_000 })
      .toBe(name);
    for (const lost of answers.filter((a) => a.statusCode === 409)) expect(lost.body).not.toContain('ak_');
  });

  it('four registers of one BedrockKey at once: one 201, its API key in the Secret, the Secret still there', async () => {
    const { call, namespace, secretData } = setup();
    const name = `racebk-${randomBytes(3).toString('hex')}`;
    await call('POST', '/admin/api/users', { namespace, name: `${name}-u` });
    await call('POST', '/admin/api/access-keys', { namespace, name: `${name}-ak`, user: `${name}-u` });
    const apiKeys = [0, 1, 2, 3].map((i) => `bedrock-api-key-${name}-${i}-0123456789`);
    const answers = await Promise.all(
      apiKeys.map((apiKey) =>
        call('POST', '/admin/api/bedrock-keys', { namespace, name, accessKey: `${name}-ak`, apiKey }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409, 409, 409]);
    const winner = apiKeys[answers.findIndex((a) => a.statusCode === 201)];
    expect((await secretData(`${name}-bedrock`))?.apiKey).toBe(winner);
  });
}

describe('concurrent creates (local mode)', () => {
  let admin: LocalAdmin;
  let headers: { authorization: string };
  const call: Call = (method, url, payload) =>
    admin.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  beforeAll(async () => {
    admin = await startLocalAdmin();
    headers = await admin.auth();
  });
  afterAll(async () => admin?.close());
  const secretData = async (name: string) => {
    const text = await readFile(join(admin.dataDir, 'secrets', 'team-a', `${name}.yaml`), 'utf8').catch(
      () => undefined,
    );
    const data = text === undefined ? undefined : (parse(text) as { data: Record<string, string> }).data;
    return data === undefined
      ? undefined
      : Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  };
  concurrentCreates(() => ({ call, namespace: 'team-a', secretData, db: () => admin.db }));

  it('a Secret an earlier attempt left (older than 30 s, its AccessKey never created) is written over; a younger one is a 409', async () => {
    await call('POST', '/admin/api/users', { namespace: 'team-a', name: 'lefty' });
    const owner = { kind: 'AccessKey', name: 'left-1' } as const;
    await admin.store.writeSecret(
      'team-a',
      'left-1-key',
      { accessKey: 'ak_left_over_0123456789abcdefghijklmnop' },
      owner,
    );
    const young = await call('POST', '/admin/api/access-keys', { namespace: 'team-a', name: 'left-1', user: 'lefty' });
    expect(young.statusCode).toBe(409);
    expect(young.json()).toMatchObject({ message: expect.stringContaining('by another request') });
    const old = new Date(Date.now() - 60_000);
    await utimes(join(admin.dataDir, 'secrets', 'team-a', 'left-1-key.yaml'), old, old);
    const issued = await call('POST', '/admin/api/access-keys', { namespace: 'team-a', name: 'left-1', user: 'lefty' });
    expect(issued.statusCode).toBe(201);
    expect((await secretData('left-1-key'))?.accessKey).toBe((issued.json() as { accessKey: string }).accessKey);
  });

  it('a name defined by a document the schemas refuse is taken: 409 naming the file, no second file written', async () => {
    await mkdir(join(admin.manifestsDir, 'team-a'), { recursive: true });
    await writeFile(
      join(admin.manifestsDir, 'team-a', 'a-hand.yaml'),
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ghost, namespace: team-a }\nspec: { colour: blue }\n',
    );
    await admin.operator.sync();
    const created = await call('POST', '/admin/api/users', { namespace: 'team-a', name: 'ghost' });
    expect(created.statusCode).toBe(409);
    expect(created.json()).toMatchObject({
      message: expect.stringContaining('team-a/a-hand.yaml, which the schemas refuse'),
    });
    expect(await readdir(join(admin.manifestsDir, 'team-a'))).not.toContain('proxyuser-ghost.yaml');
  });

  it('a name the operator holds from a file that no longer reads whole is taken: 409 naming the file', async () => {
    const file = join(admin.manifestsDir, 'team-a', 'b-hand.yaml');
    await writeFile(
      file,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: shade, namespace: team-a }\nspec: {}\n',
    );
    await admin.operator.sync();
    await writeFile(
      file,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: shade, namespace: team-a\nspec: {}\n',
    );
    await admin.operator.sync();
    const created = await call('POST', '/admin/api/users', { namespace: 'team-a', name: 'shade' });
    expect(created.statusCode).toBe(409);
    expect(created.json()).toMatchObject({
      message: expect.stringContaining('does not read whole now (team-a/b-hand.yaml)'),
    });
    expect(await readdir(join(admin.manifestsDir, 'team-a'))).not.toContain('proxyuser-shade.yaml');
  });
});

describe('concurrent creates (Kubernetes)', () => {
  const kube = adminConfig();
  const namespace = uniqueName('race');
  let admin: KubeAdmin;
  const call: Call = (method, url, payload) =>
    admin.app.inject({ method, url, headers: admin.headers, ...(payload === undefined ? {} : { payload }) });
  beforeAll(async () => {
    admin = await startKubeAdmin(namespace);
  });
  afterAll(async () => admin?.close());
  const secretData = async (name: string) => {
    const secret = (await readObject(kube, 'Secret', namespace, name)) as { data?: Record<string, string> } | undefined;
    return secret?.data === undefined
      ? undefined
      : Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  };
  concurrentCreates(() => ({ call, namespace, secretData, db: () => admin.db }));
});
