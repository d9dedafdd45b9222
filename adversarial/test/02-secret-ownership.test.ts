import { readFile, writeFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findKeyByHash } from '@ccproxy/core';
import { hashKey } from '../../proxy/test/proxy-fixture.ts';
import {
  adminConfig,
  apply,
  condition,
  deleteObject,
  mergePatch,
  objectsOf,
  readObject,
} from '../../operator/test/kube-fixture.ts';
import {
  byoKey,
  enc,
  eventually,
  startKubeStack,
  startLocalStack,
  yaml,
  type KubeStack,
  type LocalStack,
} from './ownership-fixture.ts';

/**
 * Item 2: a key issued by the admin must never authenticate as another user. The admin never
 * writes or reuses a Secret it did not create for that key (409 naming the owner), and the
 * operators serve no key whose Secret another AccessKey names too (SecretConflict: neither
 * works until one moves), nor a key generated for another — or an earlier, deleted — AccessKey.
 */
describe('02 local mode: a Secret belongs to one key', () => {
  let stack: LocalStack;
  const ns = 'team-a';
  const dataSecret = (name: string) => join(stack.admin.dataDir, 'secrets', ns, `${name}.yaml`);
  const generatedKey = async (name: string) =>
    Buffer.from(
      (parse(await readFile(dataSecret(name), 'utf8')) as { data: { accessKey: string } }).data.accessKey,
      'base64',
    ).toString();
  /** A hand edit; one of an existing file applies once it has not changed for the settle window (500 ms). */
  const hand = async (file: string, text: string) => {
    const path = join(stack.admin.manifestsDir, ns, file);
    const existed = await stat(path).then(
      () => true,
      () => false,
    );
    await writeFile(path, text);
    if (existed) await new Promise((resolve) => setTimeout(resolve, 600));
  };
  const sync = () => stack.admin.operator.sync().then(() => stack.admin.operator.sync());
  const readyOf = async (name: string) =>
    (await stack.call('GET', `/admin/api/access-keys/${enc(`${ns}/${name}`)}`)).json() as {
      ready: string;
      readyReason: string;
      readyMessage?: string;
    };

  beforeAll(async () => {
    stack = await startLocalStack();
    await mkdir(join(stack.admin.manifestsDir, ns), { recursive: true });
  });
  afterAll(async () => stack?.close());

  it('refuses to issue "baz" into the Secret of the hand-written AccessKey "other"; other keeps its key', async () => {
    await hand('other.yaml', yaml.user(ns, 'olga') + '---\n' + yaml.accessKey(ns, 'other', 'olga', 'baz-key'));
    await sync();
    const otherKey = await generatedKey('baz-key');
    expect(await stack.ask(otherKey)).toBe(200);
    const secretBefore = await readFile(dataSecret('baz-key'), 'utf8');
    await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'bea' });

    const issued = await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'baz', user: 'bea' });
    expect(issued.statusCode).toBe(409);
    expect(issued.json()).toMatchObject({
      error: 'conflict',
      message: expect.stringContaining(
        'Secret team-a/baz-key is in the way: it belongs to AccessKey team-a/other, not one the admin created for baz',
      ),
    });
    // Nothing written, nothing lost: other's Secret byte-identical, its key still served as other.
    expect(await readFile(dataSecret('baz-key'), 'utf8')).toBe(secretBefore);
    expect((await stack.call('GET', `/admin/api/access-keys/${enc(`${ns}/baz`)}`)).statusCode).toBe(404);
    expect(await stack.ask(otherKey)).toBe(200);
    expect(await findKeyByHash(stack.db, hashKey(otherKey))).toMatchObject({ name: 'other', userName: 'olga' });
    expect(await readyOf('other')).toMatchObject({ ready: 'True' });
  });

  it('the same rule for Bedrock keys: a <name>-bedrock Secret another key uses is not taken', async () => {
    await hand('zed.yaml', [yaml.user(ns, 'zed'), yaml.accessKey(ns, 'zed', 'zed', 'zb-bedrock')].join('---\n'));
    await sync();
    const zedKey = await generatedKey('zb-bedrock');
    expect(await stack.ask(zedKey)).toBe(200);
    const before = await readFile(dataSecret('zb-bedrock'), 'utf8');
    const registered = await stack.call('POST', '/admin/api/bedrock-keys', {
      namespace: ns,
      name: 'zb',
      accessKey: 'zed',
      apiKey: 'bedrock-api-key-for-zb-000111',
    });
    expect(registered.statusCode).toBe(409);
    expect((registered.json() as { message: string }).message).toBe(
      'Secret team-a/zb-bedrock is in the way: it belongs to AccessKey team-a/zed, not one the admin created for zb',
    );
    expect(registered.body).not.toContain('bedrock-api-key-for-zb-000111');
    expect(await readFile(dataSecret('zb-bedrock'), 'utf8')).toBe(before);
    expect((await stack.call('GET', `/admin/api/bedrock-keys/${enc(`${ns}/zb`)}`)).statusCode).toBe(404);
    await sync();
    expect(await stack.ask(zedKey)).toBe(200);
  });

  it('refuses a name taken by a hand-written folder Secret nobody names yet', async () => {
    await hand('loose.yaml', yaml.secret(ns, 'qux-key', { accessKey: byoKey('loose') }));
    await sync();
    const before = await readFile(join(stack.admin.manifestsDir, ns, 'loose.yaml'), 'utf8');
    const issued = await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'qux', user: 'bea' });
    expect(issued.statusCode).toBe(409);
    expect((issued.json() as { message: string }).message).toContain(
      'Secret team-a/qux-key is managed in team-a/loose.yaml',
    );
    expect(await readFile(join(stack.admin.manifestsDir, ns, 'loose.yaml'), 'utf8')).toBe(before);
    await expect(readdir(join(stack.admin.dataDir, 'secrets', ns))).resolves.not.toContain('qux-key.yaml');
  });

  it('two AccessKeys naming one Secret: SecretConflict on both, neither works, until one moves', async () => {
    const shared = byoKey('shared');
    await hand(
      'twins.yaml',
      [
        yaml.user(ns, 'tina'),
        yaml.secret(ns, 'twin-key', { accessKey: shared }),
        yaml.accessKey(ns, 'twin-a', 'tina', 'twin-key'),
      ].join('---\n'),
    );
    await sync();
    expect(await stack.ask(shared)).toBe(200);
    // A second AccessKey names the same Secret: it would authenticate as twin-a.
    await hand('twin-b.yaml', yaml.accessKey(ns, 'twin-b', 'tina', 'twin-key'));
    await sync();
    for (const name of ['twin-a', 'twin-b'])
      expect(await readyOf(name)).toMatchObject({ ready: 'False', readyReason: 'SecretConflict' });
    expect(await stack.ask(shared)).toBe(404);
    const rows = await stack.db.query<{ name: string; status: string }>(
      "SELECT name, status FROM access_keys WHERE namespace = 'team-a' AND name LIKE 'twin-%' ORDER BY name",
    );
    expect(rows).toEqual([{ name: 'twin-a', status: 'revoked' }]);
    // twin-b names another Secret: twin-a works again, twin-b gets a key of its own.
    await hand('twin-b.yaml', yaml.accessKey(ns, 'twin-b', 'tina', 'twin-b-key'));
    await sync();
    expect(await readyOf('twin-a')).toMatchObject({ ready: 'True' });
    expect(await readyOf('twin-b')).toMatchObject({ ready: 'True' });
    expect(await stack.ask(shared)).toBe(200);
    const ownKey = await generatedKey('twin-b-key');
    expect(ownKey).not.toBe(shared);
    expect(await stack.ask(ownKey)).toBe(200);
    expect(await findKeyByHash(stack.db, hashKey(shared))).toMatchObject({ name: 'twin-a' });
  });

  it('a removed AccessKey re-created under its name gets a new key; the old one is dead once its removal settled', async () => {
    await hand('gone.yaml', yaml.user(ns, 'gus') + '---\n' + yaml.accessKey(ns, 'gone', 'gus', 'gone-key'));
    await sync();
    const old = await generatedKey('gone-key');
    expect(await stack.ask(old)).toBe(200);
    await hand('gone.yaml', yaml.user(ns, 'gus'));
    // Taken out of a file: removed once the file has not changed for the settle window (500 ms).
    await new Promise((resolve) => setTimeout(resolve, 600));
    await sync();
    expect(await stack.ask(old)).toBe(404);
    await hand('gone.yaml', yaml.user(ns, 'gus') + '---\n' + yaml.accessKey(ns, 'gone', 'gus', 'gone-key'));
    await sync();
    const fresh = await generatedKey('gone-key');
    expect(fresh).not.toBe(old);
    expect(await stack.ask(fresh)).toBe(200);
    expect(await stack.ask(old)).toBe(404);
  });
});

describe('02 Kubernetes mode: a Secret belongs to one key', () => {
  let stack: KubeStack;
  const kube = adminConfig();
  const secretKey = async (name: string) => {
    const secret = (await readObject(kube, 'Secret', stack.namespace, name)) as
      { data?: Record<string, string> } | undefined;
    return Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString();
  };
  const reasonOf = async (name: string) =>
    condition(await readObject(kube, 'AccessKey', stack.namespace, name), 'Ready')?.reason;
  const applyYaml = (text: string) => apply(kube, objectsOf(text, stack.namespace));

  beforeAll(async () => {
    stack = await startKubeStack('own02');
  });
  afterAll(async () => stack?.close());

  it('refuses to issue "baz" into the Secret of the kubectl-applied AccessKey "other"', async () => {
    const ns = stack.namespace;
    await applyYaml(yaml.user(ns, 'olga') + '---\n' + yaml.accessKey(ns, 'other', 'olga', 'baz-key'));
    const otherKey = await eventually(
      () => secretKey('baz-key'),
      (key) => key !== '',
    );
    expect(await stack.askUntil(otherKey, 200)).toBe(200);
    const before = await readObject(kube, 'Secret', ns, 'baz-key');
    expect((await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'bea' })).statusCode).toBe(201);

    const issued = await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'baz', user: 'bea' });
    expect(issued.statusCode).toBe(409);
    expect((issued.json() as { message: string }).message).toContain(
      `Secret ${ns}/baz-key is in the way: it belongs to AccessKey ${ns}/other, not one the admin created for baz`,
    );
    const after = await readObject(kube, 'Secret', ns, 'baz-key');
    expect(after?.metadata?.resourceVersion).toBe(before?.metadata?.resourceVersion);
    expect(await readObject(kube, 'AccessKey', ns, 'baz')).toBeUndefined();
    expect(await stack.ask(otherKey)).toBe(200);
    expect(await findKeyByHash(stack.db, hashKey(otherKey))).toMatchObject({ name: 'other', userName: 'olga' });
  });

  it('two AccessKeys naming one Secret: SecretConflict on both, neither works, until one moves', async () => {
    const ns = stack.namespace;
    const shared = byoKey('kshared');
    await applyYaml(
      [
        yaml.user(ns, 'tina'),
        yaml.secret(ns, 'twin-key', { accessKey: shared }),
        yaml.accessKey(ns, 'twin-a', 'tina', 'twin-key'),
      ].join('---\n'),
    );
    expect(await stack.askUntil(shared, 200)).toBe(200);
    await applyYaml(yaml.accessKey(ns, 'twin-b', 'tina', 'twin-key'));
    for (const name of ['twin-a', 'twin-b'])
      expect(
        await eventually(
          () => reasonOf(name),
          (reason) => reason === 'SecretConflict',
        ),
      ).toBe('SecretConflict');
    const cr = await readObject(kube, 'AccessKey', ns, 'twin-b');
    expect(condition(cr, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretConflict' });
    expect(condition(cr, 'Ready')?.message).toContain(`AccessKey ${ns}/twin-a`);
    expect(await stack.askUntil(shared, 404)).toBe(404);
    const rows = await stack.db.query<{ status: string }>(
      "SELECT status FROM access_keys WHERE namespace = $1 AND name LIKE 'twin-%'",
      [ns],
    );
    expect(rows.every((row) => row.status === 'revoked')).toBe(true);

    await mergePatch(kube, {
      apiVersion: 'ccproxy.io/v1alpha1',
      kind: 'AccessKey',
      metadata: { name: 'twin-b', namespace: ns },
      spec: { secretName: 'twin-b-key' },
    } as never);
    expect(
      await eventually(
        () => reasonOf('twin-a'),
        (reason) => reason === 'KeyActive',
      ),
    ).toBe('KeyActive');
    expect(await stack.askUntil(shared, 200)).toBe(200);
    const ownKey = await eventually(
      () => secretKey('twin-b-key'),
      (key) => key !== '',
    );
    expect(ownKey).not.toBe(shared);
    expect(await stack.askUntil(ownKey, 200)).toBe(200);
  });

  it('delete then re-create: the old generated Secret is never adopted, its key dies at once', async () => {
    const ns = stack.namespace;
    await applyYaml(yaml.user(ns, 'gus') + '---\n' + yaml.accessKey(ns, 'gone', 'gus', 'gone-key'));
    const old = await eventually(
      () => secretKey('gone-key'),
      (key) => key !== '',
    );
    expect(await stack.askUntil(old, 200)).toBe(200);
    // --cascade=orphan: the garbage collector leaves the old Secret (it would otherwise remove it
    // with its owner) and strips its owner reference; its owner-uid annotation still names the old key.
    await deleteObject(kube, 'AccessKey', ns, 'gone', 'Orphan');
    await eventually(
      () => readObject(kube, 'AccessKey', ns, 'gone'),
      (object) => object === undefined,
    );
    expect(await stack.ask(old)).toBe(404);
    await applyYaml(yaml.accessKey(ns, 'gone', 'gus', 'gone-key'));
    expect(
      await eventually(
        () => reasonOf('gone'),
        (reason) => reason === 'SecretNotOwned',
      ),
    ).toBe('SecretNotOwned');
    expect(await stack.ask(old)).toBe(404);
    // Once the old Secret is gone, the new AccessKey gets a new key.
    await deleteObject(kube, 'Secret', ns, 'gone-key');
    const fresh = await eventually(
      () => secretKey('gone-key'),
      (key) => key !== '' && key !== old,
    );
    expect(fresh).not.toBe(old);
    expect(await stack.askUntil(fresh, 200)).toBe(200);
    expect(await stack.ask(old)).toBe(404);
  });

  it('an admin-issued key deleted with kubectl and re-applied under its name does not come back', async () => {
    const ns = stack.namespace;
    await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'hal' });
    const issued = await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'hal', user: 'hal' });
    expect(issued.statusCode).toBe(201);
    const old = (issued.json() as { accessKey: string }).accessKey;
    expect(await stack.askUntil(old, 200)).toBe(200);
    const live = await readObject(kube, 'AccessKey', ns, 'hal');
    // The admin's Secret is owned by its AccessKey, so garbage collection takes it along.
    expect((await readObject(kube, 'Secret', ns, 'hal-key'))?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'AccessKey', name: 'hal', uid: live?.metadata?.uid, controller: true }),
    ]);
    // Orphaned, the Secret stays (without its owner reference): still never adopted.
    await deleteObject(kube, 'AccessKey', ns, 'hal', 'Orphan');
    await eventually(
      () => readObject(kube, 'AccessKey', ns, 'hal'),
      (object) => object === undefined,
    );
    expect(await stack.ask(old)).toBe(404);
    await applyYaml(yaml.accessKey(ns, 'hal', 'hal', 'hal-key'));
    expect(
      await eventually(
        () => reasonOf('hal'),
        (reason) => reason === 'SecretNotOwned',
      ),
    ).toBe('SecretNotOwned');
    expect(await stack.ask(old)).toBe(404);
  });
});
