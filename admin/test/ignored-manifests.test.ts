import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * What the operator ignored in the manifests folder reaches the admin API (and the dashboard),
 * naming file, document and reason; it goes away once the file is fixed. Before, the resources
 * such a file meant to define were only missing from the lists, with the reason in the log.
 */
describe('GET /admin/api/ignored-manifests (local mode)', () => {
  let admin: LocalAdmin;
  let authorization: string;
  const ignored = async () => {
    const response = await admin.app.inject({
      method: 'GET',
      url: '/admin/api/ignored-manifests',
      headers: { authorization },
    });
    expect(response.statusCode).toBe(200);
    return response.json() as { mode: string; ignored: string[] };
  };

  beforeAll(async () => {
    admin = await startLocalAdmin();
    ({ authorization } = await admin.auth());
  });
  afterAll(async () => admin?.close());

  it('is empty for a folder the operator uses whole', async () => {
    await admin.operator.sync();
    expect(await ignored()).toEqual({ mode: 'local', ignored: [] });
  });

  it('names a refused document and a file that does not read whole, then nothing once both are fixed', async () => {
    const dir = join(admin.manifestsDir, 'team-a');
    await mkdir(dir, { recursive: true });
    const refused = join(dir, 'refused.yaml');
    const broken = join(dir, 'broken.yaml');
    await writeFile(
      refused,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ok-one, namespace: team-a }\nspec: {}\n---\n' +
        'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ghost, namespace: team-a }\nspec: { colour: blue }\n',
    );
    await writeFile(
      broken,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: shade, namespace: team-a\n',
    );
    await admin.operator.sync();

    const { ignored: problems } = await ignored();
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^team-a\/refused\.yaml \(document 2\): .*colour/),
        expect.stringMatching(/^team-a\/broken\.yaml/),
      ]),
    );
    // No absolute path of the admin's machine in the answer.
    expect(problems.join('\n')).not.toContain(admin.manifestsDir);
    // The refused document's user is in no list; the valid one beside it is.
    const users = await admin.app.inject({ method: 'GET', url: '/admin/api/users', headers: { authorization } });
    const ids = (users.json() as Array<{ id: string }>).map((user) => user.id);
    expect(ids).toContain('team-a/ok-one');
    expect(ids).not.toContain('team-a/ghost');

    await writeFile(
      refused,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ok-one, namespace: team-a }\nspec: {}\n',
    );
    await rm(broken);
    // A changed file is used once it has settled (the local operator's window).
    await expect
      .poll(async () => (await admin.operator.sync(), (await ignored()).ignored), { timeout: 10_000, interval: 200 })
      .toEqual([]);
  });
});
