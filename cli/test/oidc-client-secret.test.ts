import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, freePort, startCcproxy } from '@ccproxy/test-harness';
import { ssoLogin, startOidcIssuer, type TestIssuer } from '../../admin/test/oidc-issuer.ts';
import { adminConfig, installCrds } from '../../operator/test/kube-fixture.ts';

const sm = () =>
  new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: inject('motoUrl'),
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
const suffix = randomBytes(3).toString('hex');

let issuer: TestIssuer;
let dir: string;
let env: Record<string, string>;
let adminUrl: string;
beforeAll(async () => {
  const port = String(await freePort());
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, {
    ann: { email: 'ann@example.com', name: 'Ann', groups: ['platform'] },
  });
  await installCrds(adminConfig());
  dir = await mkdtemp(join(tmpdir(), 'ccproxy-oidc-secret-'));
  await writeFile(join(dir, 'kubeconfig'), inject('kubeconfig'), { mode: 0o600 });
  env = {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: inject('motoUrl'),
    KUBECONFIG: join(dir, 'kubeconfig'),
    DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'oidcsecret'),
    CCPROXY_ADMIN_PASSWORD: 'break-glass-password-0123',
    CCPROXY_ADMIN_SESSION_SECRET: 'session-secret-for-the-oidc-secret-test-0123456789',
    CCPROXY_ADMIN_OIDC_ISSUER_URL: issuer.url,
    CCPROXY_ADMIN_OIDC_CLIENT_ID: issuer.clientId,
    CCPROXY_ADMIN_OIDC_REDIRECT_URL: `${adminUrl}/admin/auth/oidc/callback`,
    CCPROXY_ADMIN_OIDC_SCOPES: 'openid email profile groups',
    CCPROXY_ADMIN_OIDC_ROLES: 'platform=admin',
    PORT: port,
    CCPROXY_ADMIN_PORT: port,
  };
}, 60_000);
afterAll(async () => {
  await issuer?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `ccproxy admin` that must refuse to start: its exit code and stderr. */
async function refusedStart(extra: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../src/main.ts', import.meta.url)), 'admin'], {
    env: { PATH: process.env.PATH ?? '', ...env, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stderr };
}

describe('the admin’s OIDC client secret from Secrets Manager (CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID)', () => {
  it('reads it at start and signs in through the confidential client with it; a wrong value fails the sign-in', async () => {
    const right = await sm().send(
      new CreateSecretCommand({ Name: `ccproxy-cli/oidc-right-${suffix}`, SecretString: issuer.clientSecret }),
    );
    const admin = await startCcproxy(['admin'], { ...env, CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: right.ARN ?? '' });
    try {
      const signedIn = await ssoLogin(adminUrl, 'ann');
      expect(signedIn.cookie).toBeDefined();
      const me = await fetch(`${adminUrl}/admin/auth/session`, { headers: { cookie: signedIn.cookie ?? '' } });
      expect(me.status).toBe(200);
      expect(admin.output.join('\n')).not.toContain(issuer.clientSecret);
    } finally {
      await admin.stop();
    }
    // The value really is what the token exchange sends: the issuer refuses another one.
    const wrong = await sm().send(
      new CreateSecretCommand({ Name: `ccproxy-cli/oidc-wrong-${suffix}`, SecretString: 'not-the-client-secret-0123' }),
    );
    const misconfigured = await startCcproxy(['admin'], {
      ...env,
      CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: wrong.Name ?? '',
    });
    try {
      expect((await ssoLogin(adminUrl, 'ann')).cookie).toBeUndefined();
      expect(misconfigured.output.join('\n')).not.toContain('not-the-client-secret');
    } finally {
      await misconfigured.stop();
    }
  }, 120_000);

  it('refuses to start, naming the setting and never a value, when the secret is missing or has no value yet', async () => {
    // As the CDK estate makes it: a secret with no value, to be filled with the IdP's client secret.
    const empty = await sm().send(new CreateSecretCommand({ Name: `ccproxy-cli/oidc-empty-${suffix}` }));
    for (const id of ['ccproxy-cli/oidc-does-not-exist', empty.ARN ?? '']) {
      const { code, stderr } = await refusedStart({ CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: id });
      expect(code, stderr).toBe(2);
      expect(stderr).toContain(`CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID=${id}`);
      expect(stderr).not.toContain('break-glass-password');
      expect(stderr).not.toContain('session-secret-for-the-oidc');
    }
  }, 60_000);
});
