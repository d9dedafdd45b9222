import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifestFolder } from '@ccproxy/operator';
import { ManifestFolderStore } from '../src/store/manifest-folder-store.ts';

const key = (ns: string, routing = 'PlanOnly') =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: laptop, namespace: ${ns} }\nspec: { userRef: { name: ann }, secretName: laptop-key, routing: ${routing} }\n`;

async function both(files: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-folder-identity-'));
  const manifestsDir = join(dir, 'm');
  await mkdir(manifestsDir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(manifestsDir, name), text);
  const operator = await readManifestFolder(manifestsDir);
  const admin = await new ManifestFolderStore({ manifestsDir, dataDir: join(dir, 'd') }).list('AccessKey');
  return {
    operator: operator.accessKeys.map((k) => `${k.metadata.namespace ?? 'default'}/${k.metadata.name}`),
    admin: admin.map((k) => `${k.namespace}/${k.name}`),
    problems: operator.problems,
  };
}

describe('the operator and the admin agree on which copy of a resource wins', () => {
  it('a refused copy with a numeric namespace, a valid default copy later', async () => {
    const r = await both({ 'a.yaml': key('2024'), 'b.yaml': key('default') });
    expect(r.operator).toEqual(['default/laptop']);
    expect(r.admin).toEqual(r.operator);
  });
  it('a refused copy with namespace [team-a], a valid team-a copy later', async () => {
    const r = await both({ 'a.yaml': key('[team-a]'), 'b.yaml': key('team-a') });
    // The refused copy's namespace reads as its text, team-a: it is the first copy, and neither applies the later one.
    expect(r.operator).toEqual([]);
    expect(r.problems.join('\n')).toContain('b.yaml: AccessKey/team-a/laptop is also in a.yaml');
    expect(r.admin).toEqual(r.operator);
  });

  it('reads a manifest that is a symbolic link to a file (a ConfigMap mounted as a volume), both sides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-folder-identity-'));
    const manifestsDir = join(dir, 'm');
    await mkdir(join(manifestsDir, '..data'), { recursive: true });
    await writeFile(join(manifestsDir, '..data', 'keys.yaml'), key('team-a'));
    await symlink(join(manifestsDir, '..data', 'keys.yaml'), join(manifestsDir, 'keys.yaml'));
    const operator = await readManifestFolder(manifestsDir);
    const admin = await new ManifestFolderStore({ manifestsDir, dataDir: join(dir, 'd') }).list('AccessKey');
    expect(operator.accessKeys.map((k) => `${k.metadata.namespace}/${k.metadata.name}`)).toEqual(['team-a/laptop']);
    expect(admin.map((k) => `${k.namespace}/${k.name}`)).toEqual(['team-a/laptop']);
  });

  it('refuses to write a Secret whose name a refused Secret in the folder claims: never a 200 that changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-folder-identity-'));
    const manifestsDir = join(dir, 'm');
    await mkdir(manifestsDir);
    await writeFile(
      join(manifestsDir, 'bk.yaml'),
      'apiVersion: v1\nkind: Secret\nmetadata: { name: bk-bedrock, namespace: team-a }\ndata: { apiKey: not-base64!! }\n',
    );
    const store = new ManifestFolderStore({ manifestsDir, dataDir: join(dir, 'd') });
    await expect(
      store.writeSecret('team-a', 'bk-bedrock', { apiKey: 'new' }, { kind: 'BedrockKey', name: 'bk' }),
    ).rejects.toThrow('Secret team-a/bk-bedrock is managed in bk.yaml; edit it there');
  });
});
