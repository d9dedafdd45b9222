import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase, startCcproxy } from '@ccproxy/test-harness';

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
});
