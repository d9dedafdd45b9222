import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { LocalKeyWrapper, type Database } from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';
import {
  createTestDatabase,
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { hasherSecret, hashKey, openTestDatabase, silent } from './kube-fixture.ts';

const user = (name: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name}, namespace: team-a }\nspec: {}\n`;
const accessKey = (name: string, userName: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: team-a }\nspec: { userRef: { name: ${userName} }, secretName: ${name}-key, routing: PlanOnly }\n`;
const ask = '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';
const withinASecond = { timeout: 1_000, interval: 20 };

/**
 * Local mode keeps the Kubernetes deletion rules with files: a deleted manifest revokes, a
 * manifest created again under the same name is a new resource with a new key (its uid is
 * generated and kept with its row), a deleted user's keys never come back, and a deleted Secret
 * is a deleted key — checked on two real proxy processes over real Postgres.
 */
describe('deletion and re-creation (local mode)', () => {
  let dir: string;
  let manifests: string;
  let dataDir: string;
  let db: Database;
  let operator: LocalOperator;
  let anthropic: AnthropicTestServer;
  let proxies: CcproxyProcess[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-local-del-'));
    manifests = join(dir, 'manifests');
    dataDir = join(dir, 'data');
    await mkdir(manifests);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'local-deletion');
    db = await openTestDatabase(databaseUrl);
    anthropic = await startAnthropicServer();
    proxies = await Promise.all(
      [1, 2].map(async () =>
        startCcproxy(['proxy'], {
          DATABASE_URL: databaseUrl,
          CCPROXY_KEY_HASHER_SECRET: hasherSecret,
          ANTHROPIC_UPSTREAM_URL: anthropic.url,
          CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-local-del-proxy-')),
          CCPROXY_LOG_LEVEL: 'warn',
        }),
      ),
    );
    operator = new LocalOperator({
      manifestsDir: manifests,
      dataDir,
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger: silent,
      // A long grace: a deleted Secret must not fall under it.
      rotationGraceSeconds: 3600,
      publicUrl: 'http://127.0.0.1:8080',
    });
    await operator.start();
  });
  afterAll(async () => {
    await operator?.stop();
    await Promise.all((proxies ?? []).map((p) => p.stop()));
    await anthropic?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const secretPath = (name: string) => join(dataDir, 'secrets', 'team-a', `${name}.yaml`);
  const keyIn = async (name: string) => {
    const text = await readFile(secretPath(name), 'utf8').catch(() => undefined);
    if (text === undefined) return '';
    return Buffer.from((parse(text) as { data: { accessKey: string } }).data.accessKey, 'base64').toString();
  };
  const answers = async (value: string) =>
    (
      await Promise.all(
        proxies.map(
          async (proxy) =>
            (
              await fetch(`${proxy.url}/ak/${value}/v1/messages`, {
                method: 'POST',
                body: ask,
                headers: { 'x-api-key': 'k' },
              })
            ).status,
        ),
      )
    ).join(' ');
  /** Waits for the AccessKey's (new) Secret and Ready, then for both proxies to serve its key. */
  const ready = async (name: string, not = '') => {
    await expect
      .poll(async () => [await keyIn(`${name}-key`)].some((k) => k !== '' && k !== not), {
        timeout: 5_000,
        interval: 20,
      })
      .toBe(true);
    await expect
      .poll(() => operator.lastReport.statuses.get(`AccessKey/team-a/${name}`)?.conditions[0], {
        timeout: 5_000,
        interval: 20,
      })
      .toMatchObject({ status: 'True' });
    const value = await keyIn(`${name}-key`);
    await expect.poll(() => answers(value), withinASecond).toBe('200 200');
    return value;
  };
  const uidOf = async (name: string) =>
    (await db.query<{ uid: string }>("SELECT uid FROM access_keys WHERE namespace = 'team-a' AND name = $1", [name]))[0]
      ?.uid;

  it('a deleted manifest revokes within 1 s; created again, it is a new resource with a new key', async () => {
    const file = join(manifests, 'kim.yaml');
    await writeFile(join(manifests, 'kim-user.yaml'), user('kim'));
    await writeFile(file, accessKey('kim-1', 'kim'));
    const old = await ready('kim-1');
    const oldUid = await uidOf('kim-1');
    expect(oldUid).toMatch(/^local:[0-9a-f-]{36}$/);
    await unlink(file);
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    await expect.poll(() => keyIn('kim-1-key'), withinASecond).toBe('');
    await writeFile(file, accessKey('kim-1', 'kim'));
    const fresh = await ready('kim-1', old);
    expect(fresh).not.toBe(old);
    expect(await uidOf('kim-1')).not.toBe(oldUid);
    expect(await answers(old)).toBe('404 404');
  });

  it("a deleted user's keys are refused within 1 s and do not come back when the user is created again", async () => {
    const userFile = join(manifests, 'lee-user.yaml');
    await writeFile(userFile, user('lee'));
    await writeFile(join(manifests, 'lee.yaml'), accessKey('lee-1', 'lee'));
    const old = await ready('lee-1');
    await unlink(userFile);
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    await expect
      .poll(() => operator.lastReport.statuses.get('AccessKey/team-a/lee-1')?.conditions[0], withinASecond)
      .toMatchObject({ status: 'False', reason: 'UserNotFound' });
    await writeFile(userFile, user('lee'));
    const fresh = await ready('lee-1', old);
    expect(fresh).not.toBe(old);
    expect(await answers(old)).toBe('404 404');
  });

  it('a deleted Secret is a deleted key: a new one at once, the old refused within 1 s (generated or brought)', async () => {
    await writeFile(join(manifests, 'max.yaml'), [user('max'), accessKey('max-1', 'max')].join('---\n'));
    const old = await ready('max-1');
    await unlink(secretPath('max-1-key'));
    // The data dir is not watched (the operator writes there): the next sync notices.
    await operator.sync();
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    const fresh = await ready('max-1', old);
    expect(fresh).not.toBe(old);

    const byo = `ak_brought_by_hand_${randomBytes(12).toString('hex')}`;
    const secretFile = join(manifests, 'max-2-key.yaml');
    await writeFile(join(manifests, 'max-2.yaml'), accessKey('max-2', 'max'));
    await writeFile(
      secretFile,
      `apiVersion: v1\nkind: Secret\nmetadata: { name: max-2-key, namespace: team-a }\nstringData: { accessKey: ${byo} }\n`,
    );
    await expect.poll(() => answers(byo), { timeout: 2_000, interval: 20 }).toBe('200 200');
    await unlink(secretFile);
    await expect.poll(() => answers(byo), withinASecond).toBe('404 404');
    expect(await ready('max-2')).not.toBe(byo);
  });

  it('a generated Secret naming an earlier uid is collected, never adopted', async () => {
    const planted = `ak_left_by_an_earlier_key_${randomBytes(12).toString('hex')}`;
    await mkdir(join(dataDir, 'secrets', 'team-a'), { recursive: true });
    await writeFile(
      secretPath('ned-1-key'),
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'ned-1-key',
          namespace: 'team-a',
          annotations: { 'ccproxy.io/owner': 'AccessKey/ned-1', 'ccproxy.io/owner-uid': 'local:earlier' },
        },
        data: { accessKey: Buffer.from(planted).toString('base64') },
      }),
    );
    await writeFile(join(manifests, 'ned.yaml'), [user('ned'), accessKey('ned-1', 'ned')].join('---\n'));
    const fresh = await ready('ned-1', planted);
    expect(fresh).not.toBe(planted);
    expect(await answers(planted)).toBe('404 404');
  });
});
