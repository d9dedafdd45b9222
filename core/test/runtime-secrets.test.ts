import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { resolveRuntimeSecrets, watchRuntimeSecrets } from '@ccproxy/core';

const client = () =>
  new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: inject('motoUrl'),
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
const unique = (name: string) => `ccproxy-test/${name}-${randomBytes(3).toString('hex')}`;

/** Secrets Manager (moto in server mode, the real SDK) as the source of runtime secrets. */
describe('runtime secrets from Secrets Manager', () => {
  it('fills variables from their _SECRET_ID, builds DATABASE_URL from an RDS secret, and leaves explicit values alone', async () => {
    const sm = client();
    const db = await sm.send(
      new CreateSecretCommand({
        Name: unique('database'),
        SecretString: JSON.stringify({
          username: 'ccproxy',
          password: 'p@ss/w:rd',
          host: 'db.internal',
          port: 5432,
          dbname: 'ccproxy',
          engine: 'postgres',
        }),
      }),
    );
    const hasher = await sm.send(new CreateSecretCommand({ Name: unique('hasher'), SecretString: 'h'.repeat(48) }));
    const plan = await sm.send(
      new CreateSecretCommand({ Name: unique('plan'), SecretString: 'sk-ant-from-secrets-manager' }),
    );
    const { env, versions } = await resolveRuntimeSecrets(
      {
        CCPROXY_DATABASE_SECRET_ID: db.ARN,
        CCPROXY_KEY_HASHER_SECRET_ID: hasher.Name,
        CCPROXY_PLAN_API_KEY_SECRET_ID: plan.ARN,
        CCPROXY_PLAN_API_KEY: 'sk-ant-explicit',
        PORT: '9000',
      },
      sm,
    );
    expect(env.DATABASE_URL).toBe('postgres://ccproxy:p%40ss%2Fw%3Ard@db.internal:5432/ccproxy?sslmode=require');
    expect(new URL(env.DATABASE_URL ?? '').password).toBe('p%40ss%2Fw%3Ard');
    expect(env.CCPROXY_KEY_HASHER_SECRET).toBe('h'.repeat(48));
    expect(env.CCPROXY_PLAN_API_KEY, 'an explicit value wins').toBe('sk-ant-explicit');
    expect(env.PORT).toBe('9000');
    expect([...versions.keys()].sort()).toEqual([db.ARN, hasher.Name].sort());
  });

  it('names every secret it cannot read, never a value', async () => {
    const sm = client();
    const bad = await sm.send(
      new CreateSecretCommand({
        Name: unique('bad-db'),
        SecretString: '{"username":"u","password":"do-not-print-me"}',
      }),
    );
    const error = await resolveRuntimeSecrets(
      { CCPROXY_DATABASE_SECRET_ID: bad.ARN, CCPROXY_KEY_HASHER_SECRET_ID: 'ccproxy-test/missing' },
      sm,
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain(
      `CCPROXY_DATABASE_SECRET_ID=${bad.ARN}: the database secret lacks username, password or host`,
    );
    expect(error?.message).toContain('CCPROXY_KEY_HASHER_SECRET_ID=ccproxy-test/missing');
    expect(error?.message).not.toContain('do-not-print-me');
  });

  it('refuses a secret with a blank value or none yet (made to be filled in), naming its id setting', async () => {
    const sm = client();
    const blank = await sm.send(new CreateSecretCommand({ Name: unique('blank'), SecretString: ' \n' }));
    const unset = await sm.send(new CreateSecretCommand({ Name: unique('unset') }));
    const error = await resolveRuntimeSecrets(
      { CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: blank.ARN, CCPROXY_PLAN_API_KEY_SECRET_ID: unset.Name },
      sm,
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain(`CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID=${blank.ARN}: its value is empty`);
    expect(error?.message).toContain(`CCPROXY_PLAN_API_KEY_SECRET_ID=${unset.Name}: `);
  });

  it('notices a rotation (a new current version) once', async () => {
    const sm = client();
    const hasher = await sm.send(new CreateSecretCommand({ Name: unique('rotating'), SecretString: 'a'.repeat(40) }));
    const resolved = await resolveRuntimeSecrets({ CCPROXY_KEY_HASHER_SECRET_ID: hasher.ARN }, sm);
    const rotated: string[] = [];
    const stop = watchRuntimeSecrets(resolved, (id) => rotated.push(id), { intervalMs: 50, client: sm });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(rotated).toEqual([]);
      await sm.send(new PutSecretValueCommand({ SecretId: hasher.ARN, SecretString: 'b'.repeat(40) }));
      await expect.poll(() => rotated, { timeout: 5_000, interval: 50 }).toEqual([hasher.ARN]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(rotated).toHaveLength(1);
    } finally {
      stop();
    }
  });
});
