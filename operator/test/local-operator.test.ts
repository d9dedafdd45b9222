import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { randomBytes } from 'node:crypto';
import {
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  decryptSecret,
  findBedrockCiphertext,
  findKeyByHash,
  LocalKeyWrapper,
  migrate,
  PgliteDatabase,
  type Database,
} from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';

const hashKey = createKeyHasher('s'.repeat(32));
const logger = createLogger({ level: 'silent' });
const wrapper = new LocalKeyWrapper(randomBytes(32));

const user = (name: string, extra = '') => `apiVersion: ccproxy.io/v1alpha1
kind: ProxyUser
metadata: { name: ${name}, namespace: team-a }
spec: { displayName: ${name}${extra} }
`;
const accessKey = (name: string, userName: string, secretName: string, extra = '') => `apiVersion: ccproxy.io/v1alpha1
kind: AccessKey
metadata: { name: ${name}, namespace: team-a }
spec: { userRef: { name: ${userName} }, secretName: ${secretName}${extra} }
`;

/** Past the settle window (500 ms): a file that lost a resource is taken as it is. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 600));

describe('local operator (manifests folder → Postgres)', () => {
  let dir: string;
  let db: Database;
  let operator: LocalOperator;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-local-'));
    await mkdir(join(dir, 'manifests'));
    db = await PgliteDatabase.open();
    await migrate(db, logger);
  });
  afterEach(async () => {
    await operator?.stop();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const registry = createMetricsRegistry({ processMetrics: false });
  const start = async () => {
    registry.clear();
    operator = new LocalOperator({
      registry,
      manifestsDir: join(dir, 'manifests'),
      dataDir: join(dir, 'data'),
      db,
      hashKey,
      wrapper,
      logger,
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
    return operator.start();
  };

  it('generates a key, writes it as a kubectl-shaped Secret, and stores only its hash', async () => {
    await writeFile(
      join(dir, 'manifests', 'alice.yaml'),
      `${user('alice')}---\n${accessKey('alice-laptop', 'alice', 'alice-laptop-key')}`,
    );
    const report = await start();
    expect(report.readyKeys).toHaveLength(1);
    const secret = parse(await readFile(join(dir, 'data', 'secrets', 'team-a', 'alice-laptop-key.yaml'), 'utf8'));
    expect(secret).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'alice-laptop-key', namespace: 'team-a' },
    });
    const key = Buffer.from(secret.data.accessKey, 'base64').toString();
    expect(key).toMatch(/^ak_/);
    expect(Buffer.from(secret.data.ANTHROPIC_BASE_URL, 'base64').toString()).toBe(`http://127.0.0.1:8080/ak/${key}`);
    expect(report.readyKeys[0]?.baseUrl).toBe(`http://127.0.0.1:8080/ak/${key}`);
    const rows = await db.query<Record<string, unknown>>('SELECT * FROM access_keys');
    expect(JSON.stringify(rows)).not.toContain(key);
    expect(await findKeyByHash(db, hashKey(key))).toMatchObject({
      namespace: 'team-a',
      name: 'alice-laptop',
      routing: 'PlanWithFailover',
    });
    // A second sync keeps the same key (the generated Secret is reused).
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key))).toBeDefined();
    expect(await registry.getSingleMetricAsString('ccproxy_operator_reconciles_total')).toMatch(
      /ccproxy_operator_reconciles_total\{kind="AccessKey",result="ready"\} 2/,
    );
  });

  it('adopts a key from a Secret in the folder (data base64 or stringData)', async () => {
    const byo = 'ak_bring_your_own_key_0123456789abcdef';
    const secret = `apiVersion: v1\nkind: Secret\nmetadata: { name: bob-key, namespace: team-a }\ndata: { accessKey: ${Buffer.from(byo).toString('base64')} }\n`;
    const secret2 = `apiVersion: v1\nkind: Secret\nmetadata: { name: carol-key, namespace: team-a }\nstringData: { accessKey: ${byo}-carol }\n`;
    await writeFile(
      join(dir, 'manifests', 'bob.yaml'),
      [
        user('bob'),
        accessKey('bob-key', 'bob', 'bob-key'),
        secret,
        accessKey('carol-key', 'bob', 'carol-key'),
        secret2,
      ].join('---\n'),
    );
    await start();
    expect(await findKeyByHash(db, hashKey(byo))).toMatchObject({ name: 'bob-key' });
    expect(await findKeyByHash(db, hashKey(`${byo}-carol`))).toMatchObject({ name: 'carol-key' });
  });

  it('follows edits: revoke, suspend, rotate with grace, delete', async () => {
    const key1 = 'ak_first_key_0123456789abcdefghijklmnop';
    const key2 = 'ak_second_key_0123456789abcdefghijklmno';
    const secret = (key: string) =>
      `apiVersion: v1\nkind: Secret\nmetadata: { name: k, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;
    const file = join(dir, 'manifests', 'dev.yaml');
    await writeFile(file, [user('dev'), accessKey('k', 'dev', 'k'), secret(key1)].join('---\n'));
    await start();
    expect(await findKeyByHash(db, hashKey(key1))).toBeDefined();

    await writeFile(file, [user('dev'), accessKey('k', 'dev', 'k'), secret(key2)].join('---\n'));
    await settled();
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key2))).toBeDefined();
    expect(await findKeyByHash(db, hashKey(key1)), 'rotated-out key works during the grace period').toBeDefined();

    await writeFile(file, [user('dev', ', suspended: true'), accessKey('k', 'dev', 'k'), secret(key2)].join('---\n'));
    await settled();
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key2)), 'suspended user').toBeUndefined();

    await writeFile(file, [user('dev'), accessKey('k', 'dev', 'k', ', revoked: true'), secret(key2)].join('---\n'));
    await settled();
    const report = await operator.sync();
    expect(await findKeyByHash(db, hashKey(key2)), 'revoked').toBeUndefined();
    expect(report.statuses.get('AccessKey/team-a/k')?.conditions[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'Revoked',
    });

    // Taken out of a file: gone once the file has not changed for the settle window (500 ms).
    await writeFile(file, user('dev'));
    await operator.sync();
    expect(await db.query('SELECT 1 FROM access_keys'), 'the file may still be being written').toHaveLength(1);
    await settled();
    await operator.sync();
    expect(await db.query('SELECT 1 FROM access_keys')).toHaveLength(0);
  });

  it('removes nothing while a manifest cannot be read whole (a syntax error, an editor half-way through a save)', async () => {
    const key = 'ak_half_saved_key_0123456789abcdefghijk';
    const file = join(dir, 'manifests', 'team.yaml');
    const whole = [
      user('hal'),
      accessKey('hal-key', 'hal', 'hal-secret'),
      `apiVersion: v1\nkind: Secret\nmetadata: { name: hal-secret, namespace: team-a }\nstringData: { accessKey: ${key} }\n`,
    ].join('---\n');
    await writeFile(file, whole);
    await start();
    expect(await findKeyByHash(db, hashKey(key))).toBeDefined();

    // Cut in the middle of the AccessKey document: YAML that does not parse. While the file may
    // still be being written, its previous contents stand; then it is reported and still removes nothing.
    await writeFile(file, whole.slice(0, whole.indexOf('hal-secret') + 4));
    const writing = await operator.sync();
    expect(writing.problems.join('\n')).toMatch(/team\.yaml: changed \d+ ms ago and does not read whole/);
    await settled();
    const cut = await operator.sync();
    expect(cut.problems.join('\n')).toMatch(/team\.yaml \(document 2\)/);
    expect(await findKeyByHash(db, hashKey(key)), 'kept through a file cut short').toBeDefined();
    // Truncated to nothing, as an in-place save starts.
    await writeFile(file, '');
    await settled();
    const empty = await operator.sync();
    expect(empty.problems).toContain('team.yaml: empty (delete the file to remove what it held)');
    expect(await findKeyByHash(db, hashKey(key)), 'kept through an empty file').toBeDefined();

    // Whole again, then deleted: now it goes.
    await writeFile(file, whole);
    await operator.sync();
    await rm(file);
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key)), 'removed with its file').toBeUndefined();
  });

  it('an empty file unchanged for the window blocks no removal elsewhere; a freshly emptied one does', async () => {
    const key = 'ak_stray_empty_key_0123456789abcdefghijk';
    const manifests = join(dir, 'manifests');
    const secretDoc = `apiVersion: v1\nkind: Secret\nmetadata: { name: sam-secret, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;
    // Modification times set by hand, and syncs driven by the test (no watcher): no race with the clock.
    const aged = async (name: string, text: string) => {
      await writeFile(join(manifests, name), text);
      const past = new Date(Date.now() - 10_000);
      await utimes(join(manifests, name), past, past);
    };
    await aged('team.yaml', [user('sam'), accessKey('sam-key', 'sam', 'sam-secret'), secretDoc].join('---\n'));
    await aged('new.yaml', '');
    operator = new LocalOperator({
      registry,
      manifestsDir: manifests,
      dataDir: join(dir, 'data'),
      db,
      hashKey,
      wrapper,
      logger,
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key))).toBeDefined();
    // The key taken out of team.yaml, while another file was just emptied (an editor's save in
    // place begins so): it may be about to hold what left team.yaml, so nothing is removed.
    await aged('team.yaml', user('sam'));
    await writeFile(join(manifests, 'fresh.yaml'), '');
    const during = await operator.sync();
    expect(await findKeyByHash(db, hashKey(key)), 'kept while an empty file may be mid-save').toBeDefined();
    expect(during.problems).toContain('new.yaml: empty (delete the file to remove what it held)');
    // Unchanged for the window, the empty files hide nothing: the removal goes through.
    await aged('fresh.yaml', '');
    await operator.sync();
    expect(await findKeyByHash(db, hashKey(key)), 'removed: the empty files hold nothing').toBeUndefined();
  });

  it('reports invalid documents and unknown users without touching the rest', async () => {
    await writeFile(join(dir, 'manifests', 'good.yaml'), `${user('alice')}---\n${accessKey('a', 'alice', 'a-key')}`);
    await writeFile(
      join(dir, 'manifests', 'bad.yaml'),
      `${accessKey('b', 'alice', 'b-key', ', routing: Sometimes')}---\n${accessKey('c', 'nobody', 'c-key')}---\n: : not yaml [\n`,
    );
    const report = await start();
    expect(report.problems.join('\n')).toMatch(/bad\.yaml \(document 1\): \/spec\/routing/);
    expect(report.problems.join('\n')).toMatch(/bad\.yaml \(document 3\)/);
    expect(report.statuses.get('AccessKey/team-a/c')?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Stalled', status: 'True', reason: 'UserNotFound' }),
    );
    expect(report.readyKeys.map((k) => k.name)).toEqual(['a']);
  });

  it('stores a BedrockKey encrypted, re-encrypts when its Secret changes, and drops it with the file', async () => {
    const key = 'ak_bedrock_owner_key_0123456789abcdefghi';
    const docs = (apiKey: string) =>
      [
        user('eve'),
        accessKey('eve-key', 'eve', 'eve-secret'),
        `apiVersion: v1\nkind: Secret\nmetadata: { name: eve-secret, namespace: team-a }\nstringData: { accessKey: ${key} }\n`,
        `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: eve-bedrock, namespace: team-a }\nspec: { accessKeyRef: { name: eve-key }, secretRef: { name: team-bedrock, key: apiKey } }\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: { name: team-bedrock, namespace: team-a }\nstringData: { apiKey: ${apiKey} }\n`,
      ].join('---\n');
    const file = join(dir, 'manifests', 'eve.yaml');
    await writeFile(file, docs('bedrock-api-key-one'));
    const report = await start();
    expect(report.statuses.get('BedrockKey/team-a/eve-bedrock')?.fields?.fingerprint).toMatch(/^sha256:/);
    const record = await findKeyByHash(db, hashKey(key));
    const stored = await findBedrockCiphertext(db, record?.accessKeyId ?? '');
    expect(stored?.toString()).not.toContain('bedrock-api-key-one');
    expect(await decryptSecret(stored ?? Buffer.alloc(0), wrapper)).toBe('bedrock-api-key-one');
    await writeFile(file, docs('bedrock-api-key-two'));
    await settled();
    await operator.sync();
    expect(
      await decryptSecret((await findBedrockCiphertext(db, record?.accessKeyId ?? '')) ?? Buffer.alloc(0), wrapper),
    ).toBe('bedrock-api-key-two');
    await writeFile(file, docs('x').split('---\n').slice(0, 3).join('---\n'));
    await settled();
    await operator.sync();
    expect(await findBedrockCiphertext(db, record?.accessKeyId ?? '')).toBeUndefined();
  });

  it("resolves the Bedrock API: the AccessKey's when set, else the BedrockKey's spec.api, else InvokeModel; an unknown value is refused", async () => {
    const key = 'ak_bedrock_api_owner_key_0123456789abcdef';
    const docs = (keyApi: string | undefined, accessKeyApi?: string) =>
      [
        user('fay'),
        accessKey(
          'fay-key',
          'fay',
          'fay-secret',
          accessKeyApi === undefined ? '' : `, bedrock: { api: ${accessKeyApi}, model: anthropic.m }`,
        ),
        `apiVersion: v1\nkind: Secret\nmetadata: { name: fay-secret, namespace: team-a }\nstringData: { accessKey: ${key} }\n`,
        `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: fay-bedrock, namespace: team-a }\nspec: { accessKeyRef: { name: fay-key }, secretRef: { name: fay-bedrock-secret, key: apiKey }${keyApi === undefined ? '' : `, api: ${keyApi}`} }\n`,
        `apiVersion: v1\nkind: Secret\nmetadata: { name: fay-bedrock-secret, namespace: team-a }\nstringData: { apiKey: bedrock-api-key-fay }\n`,
      ].join('---\n');
    const file = join(dir, 'manifests', 'fay.yaml');
    const apiOf = async () => (await findKeyByHash(db, hashKey(key)))?.bedrock.api;
    await writeFile(file, docs(undefined));
    await start();
    expect(await apiOf()).toBe('InvokeModel');
    const record = await findKeyByHash(db, hashKey(key));
    const ciphertext = await findBedrockCiphertext(db, record?.accessKeyId ?? '');
    await writeFile(file, docs('Converse'));
    await settled();
    await operator.sync();
    expect(await apiOf()).toBe('Converse');
    // Only the API changed: the stored envelope is kept, not encrypted again.
    expect(await findBedrockCiphertext(db, record?.accessKeyId ?? '')).toEqual(ciphertext);
    await writeFile(file, docs('Converse', 'InvokeModel'));
    await settled();
    await operator.sync();
    expect(await apiOf()).toBe('InvokeModel');
    await writeFile(file, docs('Invoke'));
    await settled();
    const report = await operator.sync();
    expect(report.problems.join('\n')).toMatch(/fay\.yaml \(document 4\): \/spec\/api/);
  });

  it('notices file changes by itself within a second', async () => {
    const key = 'ak_watched_key_0123456789abcdefghijklmn';
    const secret = `apiVersion: v1\nkind: Secret\nmetadata: { name: w, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;
    const file = join(dir, 'manifests', 'w.yaml');
    await writeFile(file, [user('w'), accessKey('w', 'w', 'w'), secret].join('---\n'));
    await start();
    expect(await findKeyByHash(db, hashKey(key))).toBeDefined();
    await rm(file);
    await expect.poll(() => findKeyByHash(db, hashKey(key)), { timeout: 1000, interval: 20 }).toBeUndefined();
  });

  it('starts no sync after stop(), not even one asked for while the last was running', async () => {
    await writeFile(join(dir, 'manifests', 'alice.yaml'), user('alice'));
    await start();
    let queriesAfterStop = 0;
    let stopped = false;
    const query = db.query.bind(db);
    db.query = (async (...args: Parameters<Database['query']>) => {
      if (stopped) queriesAfterStop += 1;
      return query(...args);
    }) as Database['query'];
    const running = operator.sync();
    const again = operator.sync();
    await operator.stop();
    stopped = true;
    await Promise.all([running, again]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(queriesAfterStop).toBe(0);
  });
});
