import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createLogger, createMetricsRegistry, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import { buildAdminApp, hashPassword, KubeResourceStore } from '@ccproxy/admin';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { hashKey, openTestDatabase, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import { password, startLocalAdmin, type LocalAdmin } from '../../admin/test/admin-fixture.ts';
import {
  adminConfig,
  bindFacadeRbac,
  bindOperatorRbac,
  ensureNamespace,
  facadeConfig,
  installCrds,
  operatorConfig,
  uniqueName,
} from '../../operator/test/kube-fixture.ts';

/**
 * Real parts for the ownership tests: the real proxy in front of the Anthropic test server, and
 * the admin facade with its control plane on the proxy's database — local mode (manifests
 * folder + local operator) or Kubernetes mode (real kube-apiserver + the Kubernetes operator
 * under its own RBAC). A key "works" when the proxy relays a request with it (200), and is
 * refused with the proxy's 404 otherwise.
 */
export interface Stack {
  db: Database;
  proxy: RunningProxy;
  anthropic: AnthropicTestServer;
  /** Status the proxy answers for one Messages request with `key`. */
  ask(key: string): Promise<number>;
  /** Polls until the proxy answers `status` for `key` (the Kubernetes operator is asynchronous). */
  askUntil(key: string, status: number): Promise<number>;
  call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: Record<string, unknown>,
  ): Promise<{ statusCode: number; body: string; json(): unknown }>;
  close(): Promise<void>;
}

export const enc = encodeURIComponent;

export async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, tries = 150): Promise<T> {
  for (let i = 0; ; i += 1) {
    const value = await probe();
    if (ok(value) || i >= tries) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function proxyParts(): Promise<Pick<Stack, 'db' | 'proxy' | 'anthropic' | 'ask' | 'askUntil'>> {
  const db = await openTestDatabase();
  const anthropic = await startAnthropicServer();
  const proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: anthropic.url, CCPROXY_KEY_CACHE_TTL_MS: '200' });
  const ask = async (key: string) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-dev', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await response.arrayBuffer();
    return response.status;
  };
  const askUntil = (key: string, status: number) =>
    eventually(
      () => ask(key),
      (got) => got === status,
    );
  return { db, proxy, anthropic, ask, askUntil };
}

export interface LocalStack extends Stack {
  admin: LocalAdmin;
}

export async function startLocalStack(): Promise<LocalStack> {
  const parts = await proxyParts();
  const admin = await startLocalAdmin({ publicUrl: parts.proxy.url }, { db: parts.db, hashKey });
  const headers = await admin.auth();
  return {
    ...parts,
    admin,
    call: (method, url, payload) =>
      admin.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) }),
    async close() {
      await admin.close();
      await parts.proxy.close();
      await parts.anthropic.close();
      await parts.db.close();
    },
  };
}

export interface KubeStack extends Stack {
  namespace: string;
  operator: KubeOperator;
  app: FastifyInstance;
}

export async function startKubeStack(prefix: string): Promise<KubeStack> {
  const kube = adminConfig();
  const namespace = uniqueName(prefix);
  await installCrds(kube);
  await bindOperatorRbac(kube);
  await bindFacadeRbac(kube);
  await ensureNamespace(kube, namespace);
  const parts = await proxyParts();
  const silent = createLogger({ level: 'silent' });
  const operator = new KubeOperator({
    client: new KubeClient(operatorConfig(), namespace),
    db: parts.db,
    hashKey,
    wrapper: new LocalKeyWrapper(randomBytes(32)),
    logger: silent,
    registry: createMetricsRegistry({ processMetrics: false }),
    rotationGraceSeconds: 60,
    publicUrl: parts.proxy.url,
    breakerOpenMs: 60_000,
    namespace,
    reflector: { backoff: { baseMs: 100, maxMs: 1000 } },
    queue: { baseDelayMs: 50, maxDelayMs: 2000 },
  });
  await operator.start();
  const app = await buildAdminApp(
    { username: 'admin', passwordHash: await hashPassword(password), sessionSeconds: 600, publicUrl: parts.proxy.url },
    { logger: silent, db: parts.db, store: new KubeResourceStore(facadeConfig(), namespace) },
  );
  const login = await app.inject({
    method: 'POST',
    url: '/admin/auth/login',
    payload: { username: 'admin', password },
  });
  const headers = { authorization: `Bearer ${(login.json() as { token: string }).token}` };
  return {
    ...parts,
    namespace,
    operator,
    app,
    call: (method, url, payload) => app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) }),
    async close() {
      await app.close();
      await operator.stop();
      await parts.proxy.close();
      await parts.anthropic.close();
      await parts.db.close();
    },
  };
}

/** YAML of the three kinds and a Secret, as someone writes them by hand. */
export const yaml = {
  user: (namespace: string, name: string) =>
    `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { displayName: ${name} }\n`,
  accessKey: (namespace: string, name: string, user: string, secretName: string) =>
    `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { userRef: { name: ${user} }, secretName: ${secretName}, routing: PlanOnly }\n`,
  secret: (namespace: string, name: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${namespace} }\nstringData:\n${Object.entries(
      data,
    )
      .map(([key, value]) => `  ${key}: ${value}`)
      .join('\n')}\n`,
  bedrockKey: (namespace: string, name: string, accessKey: string, secretName: string) =>
    `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { accessKeyRef: { name: ${accessKey} }, secretRef: { name: ${secretName}, key: apiKey } }\n`,
};

/** A bring-your-own access key (≥ 24 characters). */
export const byoKey = (label: string) => `ak_byo_${label}_${randomBytes(12).toString('hex')}`;
