import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createLogger, createMetricsRegistry, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import { buildAdminApp, hashPassword, KubeResourceStore } from '@ccproxy/admin';
import {
  adminConfig,
  bindFacadeRbac,
  bindOperatorRbac,
  ensureNamespace,
  facadeConfig,
  installCrds,
  operatorConfig,
} from '../../operator/test/kube-fixture.ts';
import { hashKey, openTestDatabase, password, publicUrl } from './admin-fixture.ts';

export interface KubeAdmin {
  app: FastifyInstance;
  db: Database;
  operator: KubeOperator;
  /** Authorization header of the signed-in admin. */
  headers: { authorization: string };
  close(): Promise<void>;
}

/**
 * The admin facade writing CRs and Secrets to the run's real kube-apiserver as its RBAC-limited
 * identity, with the real Kubernetes operator (its own identity) reconciling `namespace` into a
 * fresh real Postgres database.
 */
export async function startKubeAdmin(namespace: string): Promise<KubeAdmin> {
  const kube = adminConfig();
  await installCrds(kube);
  await bindOperatorRbac(kube);
  await bindFacadeRbac(kube);
  await ensureNamespace(kube, namespace);
  const db = await openTestDatabase();
  const silent = createLogger({ level: 'silent' });
  const operator = new KubeOperator({
    client: new KubeClient(operatorConfig(), namespace),
    db,
    hashKey,
    wrapper: new LocalKeyWrapper(randomBytes(32)),
    logger: silent,
    registry: createMetricsRegistry({ processMetrics: false }),
    rotationGraceSeconds: 60,
    publicUrl,
    breakerOpenMs: 60_000,
    namespace,
    reflector: { backoff: { baseMs: 100, maxMs: 1000 } },
    queue: { baseDelayMs: 50, maxDelayMs: 2000 },
  });
  await operator.start();
  const app = await buildAdminApp(
    { username: 'admin', passwordHash: await hashPassword(password), sessionSeconds: 600, publicUrl },
    { logger: silent, db, store: new KubeResourceStore(facadeConfig(), namespace) },
  );
  const login = await app.inject({
    method: 'POST',
    url: '/admin/auth/login',
    payload: { username: 'admin', password },
  });
  const headers = { authorization: `Bearer ${(login.json() as { token: string }).token}` };
  return {
    app,
    db,
    operator,
    headers,
    async close() {
      await app.close();
      await operator.stop();
      await db.close();
    },
  };
}
