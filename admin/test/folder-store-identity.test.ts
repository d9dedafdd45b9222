import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
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
});
