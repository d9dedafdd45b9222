import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConfig, apply, objectsOf, readObject } from '../../operator/test/kube-fixture.ts';
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
 * Item 3: the admin writes only files (local mode) and Secrets it created itself. Creating a
 * user whose file name a hand-written file already has, or editing or deleting anything that
 * lives in a hand-written file, is a 409 naming the file — which stays byte for byte as it was,
 * and the keys it defines keep working.
 */
describe('03 local mode: the admin writes only its own files', () => {
  let stack: LocalStack;
  const ns = 'team-a';
  const carolKey = byoKey('carol');
  let handFile: string;
  let handText: string;

  beforeAll(async () => {
    stack = await startLocalStack();
    await mkdir(join(stack.admin.manifestsDir, ns), { recursive: true });
    // A file with the admin's naming scheme, written by hand: another user, her Secret, her key.
    handFile = join(stack.admin.manifestsDir, ns, 'proxyuser-bob.yaml');
    handText = `# Carol's setup, kept in Git.\n${[
      yaml.user(ns, 'carol'),
      yaml.secret(ns, 'carol-key', { accessKey: carolKey }),
      yaml.accessKey(ns, 'carol-laptop', 'carol', 'carol-key'),
    ].join('---\n')}`;
    await writeFile(handFile, handText);
    await stack.admin.operator.sync();
  });
  afterAll(async () => stack?.close());

  const unchanged = async () => {
    expect(await readFile(handFile, 'utf8')).toBe(handText);
    expect(await stack.ask(carolKey)).toBe(200);
  };

  it('serves carol from the hand-written file', async () => {
    await unchanged();
  });

  it('creating user bob does not overwrite the hand-written proxyuser-bob.yaml: 409, nothing lost', async () => {
    const created = await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'bob' });
    expect(created.statusCode).toBe(409);
    expect((created.json() as { message: string }).message).toContain(
      'team-a/proxyuser-bob.yaml is in the way: it is not a file the admin created for ProxyUser team-a/bob',
    );
    await unchanged();
    expect((await stack.call('GET', `/admin/api/users/${enc('team-a/bob')}`)).statusCode).toBe(404);
  });

  it('edits and deletes of resources in a hand-written file are 409s naming the file', async () => {
    const user = (await stack.call('GET', `/admin/api/users/${enc('team-a/carol')}`)).json() as {
      resourceVersion: string;
    };
    const key = (await stack.call('GET', `/admin/api/access-keys/${enc('team-a/carol-laptop')}`)).json() as {
      resourceVersion: string;
    };
    const attempts = [
      stack.call('PUT', `/admin/api/users/${enc('team-a/carol')}`, {
        resourceVersion: user.resourceVersion,
        displayName: 'Mallory',
      }),
      stack.call('PUT', `/admin/api/access-keys/${enc('team-a/carol-laptop')}`, {
        resourceVersion: key.resourceVersion,
        routing: 'BedrockOnly',
      }),
      stack.call('POST', `/admin/api/access-keys/${enc('team-a/carol-laptop')}/revoke`),
      stack.call('DELETE', `/admin/api/access-keys/${enc('team-a/carol-laptop')}`),
    ];
    for (const response of await Promise.all(attempts)) {
      expect(response.statusCode).toBe(409);
      expect((response.json() as { message: string }).message).toMatch(
        /^(ProxyUser|AccessKey) team-a\/carol(-laptop)? is managed in team-a\/proxyuser-bob\.yaml; edit it there$/,
      );
    }
    await unchanged();
  });

  it('what the admin created itself it edits and deletes (its file, its marker)', async () => {
    expect((await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'dora' })).statusCode).toBe(201);
    const own = await readFile(join(stack.admin.manifestsDir, ns, 'proxyuser-dora.yaml'), 'utf8');
    expect(own.startsWith('# managed-by: ccproxy-admin\n')).toBe(true);
    const user = (await stack.call('GET', `/admin/api/users/${enc('team-a/dora')}`)).json() as {
      resourceVersion: string;
    };
    const edited = await stack.call('PUT', `/admin/api/users/${enc('team-a/dora')}`, {
      resourceVersion: user.resourceVersion,
      displayName: 'Dora M.',
    });
    expect(edited.statusCode).toBe(200);
    expect((await stack.call('DELETE', `/admin/api/users/${enc('team-a/dora')}`)).statusCode).toBe(200);
    await unchanged();
  });

  it('a hand edit that removes the marker hands the file back to its author', async () => {
    expect((await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'erin' })).statusCode).toBe(201);
    const file = join(stack.admin.manifestsDir, ns, 'proxyuser-erin.yaml');
    const taken = `# Erin, now kept by hand.\n${yaml.user(ns, 'erin')}`;
    await writeFile(file, taken);
    await stack.admin.operator.sync();
    expect((await stack.call('DELETE', `/admin/api/users/${enc('team-a/erin')}`)).statusCode).toBe(409);
    expect(await readFile(file, 'utf8')).toBe(taken);
  });
});

describe('03 Kubernetes mode: Secrets the admin did not create are never written', () => {
  let stack: KubeStack;
  const kube = adminConfig();
  const carolKey = byoKey('kcarol');

  beforeAll(async () => {
    stack = await startKubeStack('own03');
    const ns = stack.namespace;
    // Applied by GitOps / kubectl, not through the admin.
    await apply(
      kube,
      objectsOf(
        [
          yaml.user(ns, 'carol'),
          yaml.secret(ns, 'carol-key', { accessKey: carolKey }),
          yaml.accessKey(ns, 'carol-laptop', 'carol', 'carol-key'),
        ].join('---\n'),
        ns,
      ),
    );
    await stack.askUntil(carolKey, 200);
  });
  afterAll(async () => stack?.close());

  it('issuing a key whose Secret name is a hand-made Secret is a 409; the Secret is untouched', async () => {
    const ns = stack.namespace;
    await apply(kube, objectsOf(yaml.secret(ns, 'dan-key', { accessKey: byoKey('dan') }), ns));
    const before = await readObject(kube, 'Secret', ns, 'dan-key');
    const issued = await stack.call('POST', '/admin/api/access-keys', { namespace: ns, name: 'dan', user: 'carol' });
    expect(issued.statusCode).toBe(409);
    expect((issued.json() as { message: string }).message).toContain(
      `Secret ${ns}/dan-key is not managed by ccproxy-admin`,
    );
    expect((await readObject(kube, 'Secret', ns, 'dan-key'))?.metadata?.resourceVersion).toBe(
      before?.metadata?.resourceVersion,
    );
    expect(await readObject(kube, 'AccessKey', ns, 'dan')).toBeUndefined();
  });

  it('deleting a GitOps-applied key deletes the CR but leaves its hand-made Secret alone', async () => {
    const ns = stack.namespace;
    const before = await readObject(kube, 'Secret', ns, 'carol-key');
    expect((await stack.call('DELETE', `/admin/api/access-keys/${enc(`${ns}/carol-laptop`)}`)).statusCode).toBe(200);
    await eventually(
      () => readObject(kube, 'AccessKey', ns, 'carol-laptop'),
      (object) => object === undefined,
    );
    expect((await readObject(kube, 'Secret', ns, 'carol-key'))?.metadata?.resourceVersion).toBe(
      before?.metadata?.resourceVersion,
    );
    expect(await stack.askUntil(carolKey, 404)).toBe(404);
  });

  it('edits a GitOps-applied user (a CR: RBAC and its version guard it), and labels what it creates', async () => {
    const ns = stack.namespace;
    const user = (await stack.call('GET', `/admin/api/users/${enc(`${ns}/carol`)}`)).json() as {
      resourceVersion: string;
    };
    const edited = await stack.call('PUT', `/admin/api/users/${enc(`${ns}/carol`)}`, {
      resourceVersion: user.resourceVersion,
      displayName: 'Carol K.',
    });
    expect(edited.statusCode).toBe(200);
    expect((await readObject(kube, 'ProxyUser', ns, 'carol'))?.spec).toMatchObject({ displayName: 'Carol K.' });
    expect((await stack.call('POST', '/admin/api/users', { namespace: ns, name: 'finn' })).statusCode).toBe(201);
    expect((await readObject(kube, 'ProxyUser', ns, 'finn'))?.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'ccproxy-admin',
    });
  });
});
