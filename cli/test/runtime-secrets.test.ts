import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase, freePort, startCcproxy } from '@ccproxy/test-harness';
import { adminConfig, installCrds } from '../../operator/test/kube-fixture.ts';

const secretsManager = () =>
  new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: inject('motoUrl'),
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });

const aws = () => ({
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_SECRETS_MANAGER: inject('motoUrl'),
});

/** `ccproxy proxy` given secret ids instead of values reads them from Secrets Manager (moto) at start. */
describe('ccproxy with runtime secrets from Secrets Manager', () => {
  it('starts with the hasher secret named by CCPROXY_KEY_HASHER_SECRET_ID, and refuses to start when it cannot be read', async () => {
    const sm = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: inject('motoUrl'),
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const secret = await sm.send(
      new CreateSecretCommand({
        Name: `ccproxy-cli/hasher-${randomBytes(3).toString('hex')}`,
        SecretString: 'from-secrets-manager-0123456789abcdef',
      }),
    );
    const env = { ...aws(), DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'secrets') };
    const proxy = await startCcproxy(['proxy'], { ...env, CCPROXY_KEY_HASHER_SECRET_ID: secret.ARN ?? '' });
    try {
      expect((await fetch(`${proxy.url}/readyz`)).status).toBe(200);
      expect(proxy.output.join('\n')).not.toContain('from-secrets-manager');
    } finally {
      await proxy.stop();
    }
    const child = spawn(process.execPath, [fileURLToPath(new URL('../src/main.ts', import.meta.url)), 'proxy'], {
      env: { PATH: process.env.PATH ?? '', ...env, CCPROXY_KEY_HASHER_SECRET_ID: 'ccproxy-cli/does-not-exist' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(2);
    expect(stderr).toContain('CCPROXY_KEY_HASHER_SECRET_ID=ccproxy-cli/does-not-exist');
  });

  it('the admin facade reads its password and session secret by id, and a rotation restarts it onto the new password', async () => {
    // The estate's rule (docs/deployment.md, "Secrets"): a process reads its secrets once at start
    // and exits gracefully when one has a new current version; its Deployment starts a fresh one.
    const sm = secretsManager();
    const suffix = randomBytes(3).toString('hex');
    const password = await sm.send(
      new CreateSecretCommand({ Name: `ccproxy-cli/admin-password-${suffix}`, SecretString: 'first-password-0123' }),
    );
    const session = await sm.send(
      new CreateSecretCommand({
        Name: `ccproxy-cli/admin-session-${suffix}`,
        SecretString: 'session-secret-from-secrets-manager-0123456789',
      }),
    );
    await installCrds(adminConfig());
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-rotation-'));
    await writeFile(join(dir, 'kubeconfig'), inject('kubeconfig'), { mode: 0o600 });
    const port = String(await freePort());
    const env = {
      ...aws(),
      KUBECONFIG: join(dir, 'kubeconfig'),
      DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'rotation'),
      CCPROXY_ADMIN_PASSWORD_SECRET_ID: password.ARN ?? '',
      CCPROXY_ADMIN_SESSION_SECRET_ID: session.Name ?? '',
      CCPROXY_SECRETS_CHECK_SECONDS: '1',
      PORT: port,
      CCPROXY_ADMIN_PORT: port,
    };
    const login = (secret: string) =>
      fetch(`http://127.0.0.1:${port}/admin/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: secret }),
      }).then((r) => r.status);
    try {
      const first = await startCcproxy(['admin'], env);
      expect(await login('first-password-0123')).toBe(200);
      await sm.send(new PutSecretValueCommand({ SecretId: password.ARN, SecretString: 'second-password-4567' }));
      // Within a check interval the process notices the new version and shuts down cleanly (exit 0).
      const [code] = (await once(first.child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(first.output.join('\n')).toContain(`secret ${password.ARN ?? ''} rotated`);
      const second = await startCcproxy(['admin'], env);
      try {
        expect(await login('second-password-4567')).toBe(200);
        expect(await login('first-password-0123')).toBe(401);
        const logs = [...first.output, ...second.output].join('\n');
        for (const value of ['first-password-0123', 'second-password-4567', 'session-secret-from-secrets-manager'])
          expect(logs).not.toContain(value);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
