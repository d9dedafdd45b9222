import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, freePort, startCcproxy, type CcproxyProcess } from '@ccproxy/test-harness';
import { adminConfig, installCrds } from '../../operator/test/kube-fixture.ts';

/** `ccproxy admin` as a cluster process: writes ProxyUsers through the real kube-apiserver. */
describe('ccproxy admin in a cluster', () => {
  let dir: string;
  let admin: CcproxyProcess;
  let port: number;

  beforeAll(async () => {
    await installCrds(adminConfig());
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-admin-cmd-'));
    await writeFile(join(dir, 'kubeconfig'), inject('kubeconfig'), { mode: 0o600 });
    port = await freePort();
    // startCcproxy waits on PORT's /readyz: point it at the admin port.
    admin = await startCcproxy(['admin'], {
      KUBECONFIG: join(dir, 'kubeconfig'),
      DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'admincmd'),
      CCPROXY_ADMIN_PASSWORD: 'correct horse battery staple',
      CCPROXY_ADMIN_SESSION_SECRET: 'admin-command-test-session-secret-0123456789',
      PORT: String(port),
      CCPROXY_ADMIN_PORT: String(port),
      CCPROXY_LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await admin?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs in and writes a ProxyUser as a custom resource', async () => {
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/admin/api/users`)).status).toBe(401);
    const login = await fetch(`${base}/admin/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'correct horse battery staple' }),
    });
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const namespace = `admincmd-${Date.now().toString(36)}`;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    await fetch(`${base}/admin/api/users`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ namespace: 'default', name: `u-${namespace}`, displayName: 'From the admin command' }),
    }).then(async (r) => expect(r.status, await r.text()).toBe(201));
    const list = await fetch(`${base}/admin/api/users?_start=0&_end=100`, { headers: auth });
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain(`u-${namespace}`);
    expect(admin.output.join('\n')).not.toContain('correct horse battery staple');
  });
});
