import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, findKeyByHash, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import { buildAdminApp, hashPassword, KubeResourceStore, parseRoleRules } from '@ccproxy/admin';
import {
  adminConfig,
  apply,
  bindFacadeRbac,
  bindOperatorRbac,
  ensureNamespace,
  facadeConfig,
  installCrds,
  operatorConfig,
  readObject,
  uniqueName,
} from '../../operator/test/kube-fixture.ts';
import { hashKey, openTestDatabase, password, publicUrl } from './admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Self-service in Kubernetes mode: the ProxyUser with spec.identity and spec.selfService applied
 * as GitOps would (the API server's CRD schema fills the limits' defaults), a developer signed in
 * at a real issuer issuing a key through the facade — an AccessKey CR and its Secret, written with
 * the facade's RBAC-limited identity — which the real Kubernetes operator reconciles into Postgres.
 */
describe('self-service over the Kubernetes API', () => {
  const kube = adminConfig();
  const namespace = uniqueName('self');
  let db: Database;
  let operator: KubeOperator;
  let app: FastifyInstance;
  let issuer: TestIssuer;
  let adminUrl: string;
  let cookie: string;

  beforeAll(async () => {
    await installCrds(kube);
    await bindOperatorRbac(kube);
    await bindFacadeRbac(kube);
    await ensureNamespace(kube, namespace);
    db = await openTestDatabase();
    const silent = createLogger({ level: 'silent' });
    operator = new KubeOperator({
      client: new KubeClient(operatorConfig(), namespace),
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger: silent,
      registry: createMetricsRegistry({ processMetrics: false }),
      rotationGraceSeconds: 0,
      publicUrl,
      breakerOpenMs: 60_000,
      namespace,
      reflector: { backoff: { baseMs: 100, maxMs: 1000 } },
      queue: { baseDelayMs: 50, maxDelayMs: 2000 },
    });
    await operator.start();
    const port = await freePort();
    adminUrl = `http://127.0.0.1:${port}`;
    issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, {
      'kdev-sub': { email: 'kdev@example.com', name: 'K Dev', groups: ['devs'] },
    });
    app = await buildAdminApp(
      {
        username: 'admin',
        passwordHash: await hashPassword(password),
        sessionSeconds: 600,
        publicUrl,
        oidc: {
          issuerUrl: issuer.url,
          clientId: issuer.clientId,
          clientSecret: issuer.clientSecret,
          redirectUrl: `${adminUrl}/admin/auth/oidc/callback`,
          scopes: 'openid email profile groups',
          groupsClaim: 'groups',
          roles: parseRoleRules('devs=developer').rules,
        },
      },
      { logger: silent, db, store: new KubeResourceStore(facadeConfig(), namespace) },
    );
    await app.listen({ port, host: '127.0.0.1' });
    // GitOps: the team admin's manifest, applied to the API server (no facade involved).
    await apply(kube, [
      {
        apiVersion: 'ccproxy.io/v1alpha1',
        kind: 'ProxyUser',
        metadata: { name: 'kdev', namespace },
        spec: { identity: { subject: 'kdev-sub' }, selfService: { maxKeys: 1 } },
      } as never,
    ]);
    cookie = (await ssoLogin(adminUrl, 'kdev-sub')).cookie as string;
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await operator?.stop();
    await issuer?.close();
    await db?.close();
  });

  const call = async (method: string, url: string, body?: unknown) => {
    const response = await fetch(`${adminUrl}${url}`, {
      method,
      headers: { cookie, 'x-ccproxy-csrf': '1', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('reads the limits the CRD defaulted, issues an AccessKey CR + Secret the operator serves, and stops at maxKeys', async () => {
    const stored = await readObject(kube, 'ProxyUser', namespace, 'kdev');
    expect(stored?.spec?.selfService).toEqual({
      enabled: true,
      maxKeys: 1,
      routingModes: ['PlanWithFailover', 'PlanOnly'],
    });
    const profile = await call('GET', '/admin/api/my/profile');
    expect(profile.body).toMatchObject({ user: { id: `${namespace}/kdev` }, selfService: { maxKeys: 1 } });

    const issued = await call('POST', '/admin/api/my-keys', {});
    expect(issued.status).toBe(201);
    const name = issued.body.id as string;
    const accessKey = issued.body.accessKey as string;
    expect((await readObject(kube, 'AccessKey', namespace, name))?.spec).toMatchObject({
      userRef: { name: 'kdev' },
      secretName: `${name}-key`,
      routing: 'PlanWithFailover',
    });
    const secret = (await readObject(kube, 'Secret', namespace, `${name}-key`)) as
      { data?: Record<string, string> } | undefined;
    expect(Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString()).toBe(accessKey);
    let record = await findKeyByHash(db, hashKey(accessKey));
    for (let i = 0; record === undefined && i < 100; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      record = await findKeyByHash(db, hashKey(accessKey));
    }
    expect(record).toMatchObject({ name, routing: 'PlanWithFailover' });

    const second = await call('POST', '/admin/api/my-keys', {});
    expect(second).toMatchObject({
      status: 403,
      body: { error: 'self_service_limit', problems: ['spec.selfService.maxKeys'] },
    });
    expect((await call('GET', '/admin/api/users')).status).toBe(403);
  });
});
