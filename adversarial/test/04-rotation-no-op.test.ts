import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyByHash } from '@ccproxy/core';
import { hashKey } from '../../proxy/test/proxy-fixture.ts';
import { adminConfig, apply, condition, objectsOf, readObject } from '../../operator/test/kube-fixture.ts';
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

interface Rotated {
  accessKey: string;
  keyPrefix: string;
}

/**
 * Item 4: rotating an access key or replacing a Bedrock key either works — the new key is
 * served by the real proxy, the old one only for its grace period, the prefix / fingerprint
 * changes — or answers 409 saying where the Secret is managed. Never a 200 that did nothing.
 */
describe('04 local mode: rotation works or says where to do it', () => {
  let stack: LocalStack;
  const ns = 'team-a';
  const handKey = byoKey('hand');
  const handBedrock = 'bedrock-hand-written-api-key-0001';
  let file: string;
  let text: string;
  const bedrockView = async (name: string) =>
    (await stack.call('GET', `/admin/api/bedrock-keys/${enc(`${ns}/${name}`)}`)).json() as {
      ready: string;
      fingerprint: string | null;
    };

  beforeAll(async () => {
    stack = await startLocalStack();
    await mkdir(join(stack.admin.manifestsDir, ns), { recursive: true });
    file = join(stack.admin.manifestsDir, ns, 'hand.yaml');
    text = [
      yaml.user(ns, 'hana'),
      yaml.secret(ns, 'hana-key', { accessKey: handKey }),
      yaml.accessKey(ns, 'hana-laptop', 'hana', 'hana-key'),
      yaml.secret(ns, 'hana-bedrock', { apiKey: handBedrock }),
      yaml.bedrockKey(ns, 'hana-bedrock', 'hana-laptop', 'hana-bedrock'),
    ].join('---\n');
    await writeFile(file, text);
    await stack.admin.operator.sync();
    await stack.admin.operator.sync();
  });
  afterAll(async () => stack?.close());

  it('rotating a key whose Secret is in a hand-written manifest is a 409 naming the file', async () => {
    expect(await stack.ask(handKey)).toBe(200);
    const before = (await stack.call('GET', `/admin/api/access-keys/${enc(`${ns}/hana-laptop`)}`)).json() as {
      keyPrefix: string;
    };
    const rotated = await stack.call('POST', `/admin/api/access-keys/${enc(`${ns}/hana-laptop`)}/rotate`);
    expect(rotated.statusCode).toBe(409);
    expect(rotated.json()).toMatchObject({
      error: 'conflict',
      message: 'Secret team-a/hana-key is managed in team-a/hand.yaml; edit it there',
    });
    expect(rotated.body).not.toMatch(/ak_[A-Za-z0-9_-]{43}/);
    expect(await readFile(file, 'utf8')).toBe(text);
    expect(await stack.ask(handKey)).toBe(200);
    const after = (await stack.call('GET', `/admin/api/access-keys/${enc(`${ns}/hana-laptop`)}`)).json() as {
      keyPrefix: string;
    };
    expect(after.keyPrefix).toBe(before.keyPrefix);
  });

  it('replacing a Bedrock key whose Secret is hand-written is a 409; the fingerprint stays', async () => {
    const before = await bedrockView('hana-bedrock');
    expect(before).toMatchObject({ ready: 'True' });
    const replaced = await stack.call('PUT', `/admin/api/bedrock-keys/${enc(`${ns}/hana-bedrock`)}`, {
      apiKey: 'bedrock-replacement-api-key-0002',
    });
    expect(replaced.statusCode).toBe(409);
    expect((replaced.json() as { message: string }).message).toBe(
      'Secret team-a/hana-bedrock is managed in team-a/hand.yaml; edit it there',
    );
    expect(replaced.body).not.toContain('bedrock-replacement-api-key-0002');
    expect(await readFile(file, 'utf8')).toBe(text);
    expect((await bedrockView('hana-bedrock')).fingerprint).toBe(before.fingerprint);
  });

  it('a 200 rotation is real: the new key is served, the old one only within its grace, the prefix moves', async () => {
    await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'ivy' });
    const issued = (
      await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'ivy-laptop', user: 'ivy' })
    ).json() as Rotated;
    expect(await stack.ask(issued.accessKey)).toBe(200);
    const rotated = await stack.call('POST', `/admin/api/access-keys/${enc(`${ns}/ivy-laptop`)}/rotate`);
    expect(rotated.statusCode).toBe(200);
    const next = rotated.json() as Rotated;
    expect(next.accessKey).not.toBe(issued.accessKey);
    expect(await stack.ask(next.accessKey)).toBe(200);
    expect(await stack.ask(issued.accessKey)).toBe(200);
    expect((await findKeyByHash(stack.db, hashKey(issued.accessKey)))?.validUntil).toBeGreaterThan(Date.now());
    const view = (await stack.call('GET', `/admin/api/access-keys/${enc(`${ns}/ivy-laptop`)}`)).json() as {
      keyPrefix: string;
    };
    expect(view.keyPrefix).toBe(next.keyPrefix);
    expect(view.keyPrefix).not.toBe(issued.keyPrefix);
    // After the grace period the old key is refused.
    await stack.db.query(
      "UPDATE access_keys SET previous_key_expires_at = now() - interval '1 second' WHERE namespace = $1 AND name = 'ivy-laptop'",
      [ns],
    );
    expect(await stack.askUntil(issued.accessKey, 404)).toBe(404);
    expect(await stack.ask(next.accessKey)).toBe(200);
  });

  it('a 200 Bedrock-key replacement changes the fingerprint', async () => {
    const registered = await stack.call('POST', '/admin/api/bedrock-keys', {
      namespace: ns,
      name: 'ivy-bedrock',
      accessKey: 'ivy-laptop',
      apiKey: 'bedrock-ivy-api-key-first-0001',
    });
    expect(registered.statusCode).toBe(201);
    const before = await bedrockView('ivy-bedrock');
    expect(before.fingerprint).toMatch(/\S+/);
    const replaced = await stack.call('PUT', `/admin/api/bedrock-keys/${enc(`${ns}/ivy-bedrock`)}`, {
      apiKey: 'bedrock-ivy-api-key-second-0002',
    });
    expect(replaced.statusCode).toBe(200);
    expect((replaced.json() as { fingerprint: string }).fingerprint).not.toBe(before.fingerprint);
    const [row] = await stack.db.query<{ fingerprint: string }>(
      "SELECT fingerprint FROM bedrock_keys WHERE namespace = $1 AND name = 'ivy-bedrock'",
      [ns],
    );
    expect(row?.fingerprint).toBe((replaced.json() as { fingerprint: string }).fingerprint);
  });
});

describe('04 Kubernetes mode: rotation works or says where to do it', () => {
  let stack: KubeStack;
  const kube = adminConfig();
  const handKey = byoKey('khand');
  const prefixOf = async (name: string) =>
    (await readObject(kube, 'AccessKey', stack.namespace, name))?.status?.keyPrefix as string | undefined;

  beforeAll(async () => {
    stack = await startKubeStack('own04');
    const ns = stack.namespace;
    await apply(
      kube,
      objectsOf(
        [
          yaml.user(ns, 'hana'),
          yaml.secret(ns, 'hana-key', { accessKey: handKey }),
          yaml.accessKey(ns, 'hana-laptop', 'hana', 'hana-key'),
          yaml.secret(ns, 'hana-bedrock', { apiKey: 'bedrock-hand-written-api-key-0001' }),
          yaml.bedrockKey(ns, 'hana-bedrock', 'hana-laptop', 'hana-bedrock'),
          yaml.accessKey(ns, 'gen-laptop', 'hana', 'gen-key'),
        ].join('---\n'),
        ns,
      ),
    );
    await stack.askUntil(handKey, 200);
  });
  afterAll(async () => stack?.close());

  it('rotating or replacing into a Secret the admin did not create is a 409; nothing changes', async () => {
    const ns = stack.namespace;
    const key = await readObject(kube, 'Secret', ns, 'hana-key');
    const bedrock = await readObject(kube, 'Secret', ns, 'hana-bedrock');
    const rotated = await stack.call('POST', `/admin/api/access-keys/${enc(`${ns}/hana-laptop`)}/rotate`);
    expect(rotated.statusCode).toBe(409);
    expect((rotated.json() as { message: string }).message).toBe(
      `Secret ${ns}/hana-key is not managed by ccproxy-admin; rotate or change it where it is managed`,
    );
    const replaced = await stack.call('PUT', `/admin/api/bedrock-keys/${enc(`${ns}/hana-bedrock`)}`, {
      apiKey: 'bedrock-replacement-api-key-0002',
    });
    expect(replaced.statusCode).toBe(409);
    expect((await readObject(kube, 'Secret', ns, 'hana-key'))?.metadata?.resourceVersion).toBe(
      key?.metadata?.resourceVersion,
    );
    expect((await readObject(kube, 'Secret', ns, 'hana-bedrock'))?.metadata?.resourceVersion).toBe(
      bedrock?.metadata?.resourceVersion,
    );
    expect(await stack.ask(handKey)).toBe(200);
  });

  it('a 200 rotation is real: admin-issued and operator-generated keys both move', async () => {
    const ns = stack.namespace;
    await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'ivy' });
    const issued = (
      await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'ivy-laptop', user: 'ivy' })
    ).json() as Rotated;
    expect(await stack.askUntil(issued.accessKey, 200)).toBe(200);
    // The operator generated gen-key for gen-laptop (applied by hand): ccproxy's own, rotatable.
    const generated = await eventually(
      () => prefixOf('gen-laptop'),
      (prefix) => prefix !== undefined,
    );
    for (const [name, oldPrefix, oldKey] of [
      ['ivy-laptop', issued.keyPrefix, issued.accessKey],
      ['gen-laptop', generated, undefined],
    ] as const) {
      const rotated = await stack.call('POST', `/admin/api/access-keys/${enc(`${ns}/${name}`)}/rotate`);
      expect(rotated.statusCode).toBe(200);
      const next = rotated.json() as Rotated;
      expect(await stack.askUntil(next.accessKey, 200)).toBe(200);
      if (oldKey !== undefined) expect(await stack.ask(oldKey)).toBe(200); // grace
      expect(
        await eventually(
          () => prefixOf(name),
          (prefix) => prefix === next.keyPrefix,
        ),
      ).toBe(next.keyPrefix);
      expect(next.keyPrefix).not.toBe(oldPrefix);
    }
  });

  it('a 200 Bedrock-key replacement changes the fingerprint', async () => {
    const ns = stack.namespace;
    expect(
      (
        await stack.call('POST', '/admin/api/bedrock-keys', {
          namespace: ns,
          name: 'ivy-bedrock',
          accessKey: 'ivy-laptop',
          apiKey: 'bedrock-ivy-api-key-first-0001',
        })
      ).statusCode,
    ).toBe(201);
    const fingerprint = async () => (await readObject(kube, 'BedrockKey', ns, 'ivy-bedrock'))?.status?.fingerprint;
    const before = await eventually(fingerprint, (value) => typeof value === 'string');
    const replaced = await stack.call('PUT', `/admin/api/bedrock-keys/${enc(`${ns}/ivy-bedrock`)}`, {
      apiKey: 'bedrock-ivy-api-key-second-0002',
    });
    expect(replaced.statusCode).toBe(200);
    const after = await eventually(fingerprint, (value) => typeof value === 'string' && value !== before);
    expect(after).not.toBe(before);
    expect(condition(await readObject(kube, 'BedrockKey', ns, 'ivy-bedrock'), 'Ready')?.status).toBe('True');
  });
});
