import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyByHash, type Database } from '@ccproxy/core';
import { adminConfig, condition, mergePatch, readObject, uniqueName } from '../../operator/test/kube-fixture.ts';
import { hashKey } from './admin-fixture.ts';
import { startKubeAdmin, type KubeAdmin } from './kube-admin-fixture.ts';

/**
 * The admin facade writing CRs and Secrets to a real kube-apiserver, with the real Kubernetes
 * operator (running as its RBAC-limited identity) reconciling them into real Postgres.
 */
describe('admin REST facade over the Kubernetes API', () => {
  const kube = adminConfig();
  const namespace = uniqueName('admin');
  let admin: KubeAdmin;
  let db: Database;
  const enc = encodeURIComponent;
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
    admin.app.inject({ method, url, headers: admin.headers, ...(payload === undefined ? {} : { payload }) });
  const eventually = async <T>(probe: () => Promise<T>, ok: (value: T) => boolean): Promise<T> => {
    for (let i = 0; ; i += 1) {
      const value = await probe();
      if (ok(value) || i > 100) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  beforeAll(async () => {
    admin = await startKubeAdmin(namespace);
    ({ db } = admin);
  });
  afterAll(async () => admin?.close());

  it('creates a ProxyUser CR, which the operator marks Ready', async () => {
    const created = await call('POST', '/admin/api/users', { namespace, name: 'alice', displayName: 'Alice Kim' });
    expect(created.statusCode).toBe(201);
    const cr = await readObject(kube, 'ProxyUser', namespace, 'alice');
    expect(cr?.spec).toEqual({ displayName: 'Alice Kim', description: '', suspended: false });
    const read = await eventually(
      async () => (await call('GET', `/admin/api/users/${enc(`${namespace}/alice`)}`)).json() as { ready: string },
      (user) => user.ready === 'True',
    );
    expect(read).toMatchObject({ ready: 'True', displayName: 'Alice Kim' });
  });

  it('issues a key: Secret + AccessKey CR, adopted by the operator, shown once', async () => {
    const issued = await call('POST', '/admin/api/access-keys', {
      namespace,
      name: 'alice-laptop',
      user: 'alice',
      routing: 'PlanOnly',
    });
    expect(issued.statusCode).toBe(201);
    const { accessKey, id } = issued.json() as { accessKey: string; id: string };
    const secret = (await readObject(kube, 'Secret', namespace, 'alice-laptop-key')) as
      { data?: Record<string, string> } | undefined;
    expect(Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString()).toBe(accessKey);
    expect((await readObject(kube, 'AccessKey', namespace, 'alice-laptop'))?.spec).toMatchObject({
      userRef: { name: 'alice' },
      secretName: 'alice-laptop-key',
      routing: 'PlanOnly',
    });
    expect(
      await eventually(
        () => findKeyByHash(db, hashKey(accessKey)),
        (record) => record !== undefined,
      ),
    ).toMatchObject({ name: 'alice-laptop', routing: 'PlanOnly' });
    const read = await eventually(
      async () => await call('GET', `/admin/api/access-keys/${enc(id)}`),
      (response) => (response.json() as { ready: string }).ready === 'True',
    );
    expect(read.body).not.toContain(accessKey);
    expect(read.json()).toMatchObject({ keyPrefix: accessKey.slice(0, 10), user: 'alice' });
  });

  it('refuses a stale edit with 409 after someone else changed the CR', async () => {
    const before = (await call('GET', `/admin/api/access-keys/${enc(`${namespace}/alice-laptop`)}`)).json() as {
      resourceVersion: string;
    };
    // Someone else (kubectl, a GitOps sync) edits the object meanwhile.
    await mergePatch(kube, {
      apiVersion: 'ccproxy.io/v1alpha1',
      kind: 'AccessKey',
      metadata: { name: 'alice-laptop', namespace },
      spec: { routing: 'PlanWithFailover' },
    } as never);
    // BedrockOnly needs a model (the admission policy's cross-field rule).
    const bedrockOnly = {
      routing: 'BedrockOnly',
      bedrock: { model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' },
    };
    const stale = await call('PUT', `/admin/api/access-keys/${enc(`${namespace}/alice-laptop`)}`, {
      resourceVersion: before.resourceVersion,
      ...bedrockOnly,
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ error: 'conflict' });
    expect((await readObject(kube, 'AccessKey', namespace, 'alice-laptop'))?.spec).toMatchObject({
      routing: 'PlanWithFailover',
    });
    const fresh = (await call('GET', `/admin/api/access-keys/${enc(`${namespace}/alice-laptop`)}`)).json() as {
      resourceVersion: string;
    };
    const updated = await call('PUT', `/admin/api/access-keys/${enc(`${namespace}/alice-laptop`)}`, {
      resourceVersion: fresh.resourceVersion,
      ...bedrockOnly,
    });
    expect(updated.statusCode).toBe(200);
    expect((await readObject(kube, 'AccessKey', namespace, 'alice-laptop'))?.spec).toMatchObject({
      routing: 'BedrockOnly',
    });
  });

  it('revokes through spec.revoked; the operator stops the key', async () => {
    const issued = (
      await call('POST', '/admin/api/access-keys', { namespace, name: 'alice-ci', user: 'alice' })
    ).json() as { accessKey: string; id: string };
    await eventually(
      () => findKeyByHash(db, hashKey(issued.accessKey)),
      (record) => record !== undefined,
    );
    expect((await call('POST', `/admin/api/access-keys/${enc(issued.id)}/revoke`)).statusCode).toBe(200);
    expect(
      await eventually(
        () => findKeyByHash(db, hashKey(issued.accessKey)),
        (record) => record === undefined,
      ),
    ).toBeUndefined();
    const cr = await eventually(
      () => readObject(kube, 'AccessKey', namespace, 'alice-ci'),
      (object) => condition(object, 'Ready')?.reason === 'Revoked',
    );
    expect(condition(cr, 'Ready')).toMatchObject({ status: 'False', reason: 'Revoked' });
  });

  it('registers a Bedrock key as a Secret plus a BedrockKey CR', async () => {
    const registered = await call('POST', '/admin/api/bedrock-keys', {
      namespace,
      name: 'alice-bedrock',
      accessKey: 'alice-laptop',
      apiKey: 'bedrock-api-key-0123456789',
    });
    expect(registered.statusCode).toBe(201);
    const secret = (await readObject(kube, 'Secret', namespace, 'alice-bedrock-bedrock')) as
      { data?: Record<string, string> } | undefined;
    expect(Buffer.from(secret?.data?.apiKey ?? '', 'base64').toString()).toBe('bedrock-api-key-0123456789');
    expect((await readObject(kube, 'BedrockKey', namespace, 'alice-bedrock'))?.spec).toEqual({
      accessKeyRef: { name: 'alice-laptop' },
      // Defaulted by the API server (the CRD's default).
      auth: 'ApiKey',
      secretRef: { name: 'alice-bedrock-bedrock', key: 'apiKey' },
    });
    const read = await eventually(
      async () =>
        (await call('GET', `/admin/api/bedrock-keys/${enc(`${namespace}/alice-bedrock`)}`)).json() as {
          ready: string;
          fingerprint: string | null;
        },
      (key) => key.ready === 'True',
    );
    expect(read.fingerprint).toMatch(/\S+/);
    expect(JSON.stringify(read)).not.toContain('bedrock-api-key-0123456789');
  });

  it('answers 404 for objects that do not exist and 409 for duplicates', async () => {
    expect((await call('GET', `/admin/api/users/${enc(`${namespace}/nobody`)}`)).statusCode).toBe(404);
    expect((await call('POST', '/admin/api/users', { namespace, name: 'alice' })).statusCode).toBe(409);
    expect((await call('DELETE', `/admin/api/bedrock-keys/${enc(`${namespace}/nothing`)}`)).statusCode).toBe(404);
  });

  it("manages the namespace's TeamBudget with the facade's RBAC; the operator writes its row and status", async () => {
    const id = enc(`${namespace}/team`);
    const created = await call('POST', '/admin/api/team-budgets', {
      namespace,
      budget: { monthly: { usd: 100 }, softLimitPercent: 90 },
    });
    expect(created.statusCode).toBe(201);
    await expect
      .poll(async () => (await call('GET', `/admin/api/team-budgets/${id}`)).json(), { timeout: 10_000 })
      .toMatchObject({ ready: 'True', state: 'Ok', budgetStatus: { month: { limitUsd: '100.00', percent: 0 } } });
    const current = (await call('GET', `/admin/api/team-budgets/${id}`)).json() as { resourceVersion: string };
    const updated = await call('PUT', `/admin/api/team-budgets/${id}`, {
      resourceVersion: current.resourceVersion,
      budget: { daily: { usd: 5 } },
    });
    expect(updated.statusCode).toBe(200);
    await expect
      .poll(async () => (await db.query('SELECT budget FROM team_budgets WHERE namespace = $1', [namespace]))[0], {
        timeout: 10_000,
      })
      .toEqual({ budget: { daily: { usd: 5 }, softLimitPercent: 80 } });
    expect((await call('DELETE', `/admin/api/team-budgets/${id}`)).statusCode).toBe(200);
    await expect
      .poll(async () => (await db.query('SELECT 1 FROM team_budgets WHERE namespace = $1', [namespace])).length, {
        timeout: 10_000,
      })
      .toBe(0);
  });
});
