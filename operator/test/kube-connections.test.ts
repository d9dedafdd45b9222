import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '@ccproxy/operator/kube';
import { startCountingForwarder, type CountingForwarder } from '@ccproxy/test-harness';
import { adminConfig, ensureNamespace, uniqueName } from './kube-fixture.ts';

/**
 * The operator's API requests ride keep-alive connections (client-node 2's generated clients open
 * a new TCP + TLS connection for every call, a new undici Agent per request, which at thousands of
 * keys cost most of the reconcile time and hundreds of MB of RSS). A TCP forwarder in front of the real API
 * server counts the connections a KubeClient opens.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function countingForwarder(target: URL): Promise<CountingForwarder> {
  const forwarder = await startCountingForwarder(target);
  cleanups.push(() => forwarder.close());
  return forwarder;
}

describe('KubeClient connections', () => {
  it('reuses one keep-alive connection for sequential requests, and a few for concurrent ones', async () => {
    const namespace = uniqueName('conn');
    await ensureNamespace(adminConfig(), namespace);
    const config = adminConfig();
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error('no cluster in the kubeconfig');
    const forwarder = await countingForwarder(new URL(cluster.server));
    config.clusters = config.clusters.map((c) => (c.name === cluster.name ? { ...c, server: forwarder.url } : c));
    const client = new KubeClient(config, namespace);

    for (let i = 0; i < 20; i += 1) expect(await client.readLease(namespace, `absent-${i}`)).toBeUndefined();
    expect(forwarder.connections()).toBe(1);
    // Lists (metadata-only and custom resources) share it too.
    await client.list('SecretMeta');
    await client.list('AccessKey');
    expect(forwarder.connections()).toBeLessThanOrEqual(2);

    // Concurrent requests open connections up to what is in flight at once, then reuse them.
    for (let round = 0; round < 5; round += 1)
      await Promise.all(Array.from({ length: 8 }, (_, i) => client.readLease(namespace, `absent-${i}`)));
    expect(forwarder.connections()).toBeLessThanOrEqual(2 + 8);
  });
});
