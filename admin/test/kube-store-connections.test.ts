import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConnection } from '@ccproxy/operator/kube';
import { KubeResourceStore } from '@ccproxy/admin';
import { startCountingForwarder, type CountingForwarder } from '@ccproxy/test-harness';
import {
  adminConfig,
  bindFacadeRbac,
  ensureNamespace,
  facadeConfig,
  installCrds,
  uniqueName,
} from '../../operator/test/kube-fixture.ts';

/**
 * The admin's Kubernetes store rides one keep-alive connection (client-node's
 * `applyToHTTPSOptions` gave every call a new agent: a TCP and TLS handshake per call), both
 * from client-node's KubeConfig and from the kubeconfig `ccproxy admin` reads itself. A TCP
 * forwarder in front of the real API server counts the connections.
 */
describe('the admin store and the API server: one connection', () => {
  const namespace = uniqueName('admconn');
  let forwarder: CountingForwarder;
  let dir: string;

  beforeAll(async () => {
    const kube = adminConfig();
    await installCrds(kube);
    await bindFacadeRbac(kube);
    await ensureNamespace(kube, namespace);
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-admconn-'));
  });
  afterAll(async () => {
    await forwarder?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const throughForwarder = async () => {
    const config = facadeConfig();
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error('no cluster in the kubeconfig');
    await forwarder?.close();
    forwarder = await startCountingForwarder(new URL(cluster.server));
    config.clusters = config.clusters.map((c) => (c.name === cluster.name ? { ...c, server: forwarder.url } : c));
    return config;
  };

  const exercise = async (store: KubeResourceStore) => {
    const name = uniqueName('u');
    await store.create('ProxyUser', namespace, name, {
      displayName: 'Conn Test',
      description: 'connection test',
      suspended: false,
    });
    for (let i = 0; i < 10; i += 1) expect((await store.get('ProxyUser', namespace, name))?.name).toBe(name);
    expect((await store.list('ProxyUser')).map((u) => u.name)).toContain(name);
    await store.delete('ProxyUser', namespace, name);
    expect(await store.get('ProxyUser', namespace, name)).toBeUndefined();
  };

  it('from a KubeConfig (tests, exec-plugin kubeconfigs): every call on one connection', async () => {
    const config = await throughForwarder();
    await exercise(new KubeResourceStore(config, namespace));
    expect(forwarder.connections()).toBe(1);
  });

  it('from the kubeconfig file `ccproxy admin` reads (no client-node): every call on one connection', async () => {
    const config = await throughForwarder();
    const file = join(dir, 'kubeconfig');
    await writeFile(file, config.exportConfig(), { mode: 0o600 });
    const connection = await loadKubeConnection({ KUBECONFIG: file });
    await exercise(new KubeResourceStore(connection, namespace));
    expect(forwarder.connections()).toBe(1);
  });

  it('an API server that is not there is a clear `unavailable`, not a crash', async () => {
    const config = await throughForwarder();
    await forwarder.close();
    await expect(new KubeResourceStore(config, namespace).list('ProxyUser')).rejects.toMatchObject({
      reason: 'unavailable',
      message: expect.stringContaining('Kubernetes API unreachable'),
    });
  });
});
