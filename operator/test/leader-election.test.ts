import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient, LeaderElector, type LeaderClock } from '@ccproxy/operator/kube';
import { microTime } from '../src/kube/kube-wire.ts';
import { adminConfig, ensureNamespace, silent, uniqueName } from './kube-fixture.ts';

/**
 * Leader election on the real API server when clocks disagree. A Lease's `renewTime` is written
 * by the holder's clock; a candidate must time expiry by its own observation of the record (as
 * client-go does), or a holder whose clock runs behind loses a Lease it is renewing, and one
 * whose clock runs ahead keeps a dead Lease for as long as its clock is ahead.
 */
const hour = 3_600_000;
const leaseSeconds = 2;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp() {
  const namespace = uniqueName('lease');
  await ensureNamespace(adminConfig(), namespace);
  const client = new KubeClient(adminConfig());
  return { namespace, client };
}

/** A holder that renews every 300 ms with its clock `skewMs` off, until stopped. */
function skewedHolder(client: KubeClient, namespace: string, skewMs: number) {
  let running = true;
  const renew = async (first: boolean) => {
    const renewTime = microTime(Date.now() + skewMs);
    const spec = { holderIdentity: 'skewed', leaseDurationSeconds: leaseSeconds, renewTime, acquireTime: renewTime };
    if (first) await client.createLease(namespace, { metadata: { name: 'ccproxy-operator', namespace }, spec });
    else {
      const lease = await client.readLease(namespace, 'ccproxy-operator');
      if (lease === undefined || lease.spec?.holderIdentity !== 'skewed') return; // lost it
      lease.spec = { ...lease.spec, renewTime };
      await client.replaceLease(namespace, lease).catch(() => undefined);
    }
  };
  const loop = (async () => {
    await renew(true);
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (running) await renew(false);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

function candidate(client: KubeClient, namespace: string) {
  const elector = new LeaderElector({
    client,
    namespace,
    name: 'ccproxy-operator',
    identity: 'candidate',
    logger: silent,
    leaseDurationMs: leaseSeconds * 1000,
    renewDeadlineMs: 1_300,
    retryPeriodMs: 250,
  });
  let electedAt: number | undefined;
  const running = elector.run(() => void (electedAt = Date.now()));
  cleanups.push(async () => {
    await elector.stop();
    await running;
  });
  return { electedAt: () => electedAt };
}

describe('leader election with skewed clocks (real API server)', () => {
  it('does not take a Lease from a live holder whose clock runs an hour behind', async () => {
    const { namespace, client } = await setUp();
    const holder = skewedHolder(client, namespace, -hour);
    cleanups.push(() => holder.stop());
    const elector = candidate(client, namespace);
    // Three lease durations of a live holder: the candidate must stay a standby throughout.
    await new Promise((resolve) => setTimeout(resolve, 3 * leaseSeconds * 1000));
    expect(elector.electedAt()).toBeUndefined();
    const lease = await client.readLease(namespace, 'ccproxy-operator');
    expect(lease?.spec?.holderIdentity).toBe('skewed');
    // Once the holder stops renewing, the candidate takes over after one lease duration of its own clock.
    const stoppedAt = Date.now();
    await holder.stop();
    await expect.poll(() => elector.electedAt(), { timeout: 10_000, interval: 50 }).toBeDefined();
    expect((elector.electedAt() ?? 0) - stoppedAt).toBeGreaterThanOrEqual(leaseSeconds * 1000 - 400);
  });

  it('takes over a dead holder whose clock ran an hour ahead within one lease duration, not an hour', async () => {
    const { namespace, client } = await setUp();
    const holder = skewedHolder(client, namespace, hour);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await holder.stop();
    const diedAt = Date.now();
    const elector = candidate(client, namespace);
    await expect.poll(() => elector.electedAt(), { timeout: 10_000, interval: 50 }).toBeDefined();
    expect((elector.electedAt() ?? 0) - diedAt).toBeLessThan(leaseSeconds * 1000 + 2_000);
    const lease = await client.readLease(namespace, 'ccproxy-operator');
    expect(lease?.spec?.holderIdentity).toBe('candidate');
  });

  it('two replicas, one clock an hour ahead and one an hour behind: one leader at a time, and a failover within a lease duration', async () => {
    const { namespace, client } = await setUp();
    // Each replica's own clock (injected): wall time skewed; the monotonic clock is what it times with.
    const skewed = (offsetMs: number): LeaderClock => ({
      monotonicMs: () => performance.now(),
      wall: () => new Date(Date.now() + offsetMs),
    });
    // Replica A's API connection can be cut (its process hangs, or its node is partitioned).
    let aCut = false;
    const aClient = new Proxy(client, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          aCut ? Promise.reject(new Error('partitioned')) : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    // Once cut, A's wall clock is also set back an hour: stepping down must not wait for it.
    let aOffset = hour;
    const aClock: LeaderClock = {
      monotonicMs: () => performance.now(),
      wall: () => new Date(Date.now() + aOffset),
    };
    const replica = (identity: string, elector: LeaderElector) => {
      const term: { from?: number; to?: number } = {};
      const running = elector.run((lost) => {
        term.from = Date.now();
        lost.addEventListener('abort', () => (term.to = Date.now()));
      });
      cleanups.push(async () => {
        await elector.stop();
        await running;
      });
      return { identity, elector, term };
    };
    const options = {
      namespace,
      name: 'ccproxy-operator',
      logger: silent,
      leaseDurationMs: leaseSeconds * 1000,
      renewDeadlineMs: 1_300,
      retryPeriodMs: 250,
    };
    const a = replica('a', new LeaderElector({ ...options, client: aClient, identity: 'a', clock: aClock }));
    await expect.poll(() => a.elector.isLeader, { timeout: 10_000, interval: 50 }).toBe(true);
    const b = replica('b', new LeaderElector({ ...options, client, identity: 'b', clock: skewed(-hour) }));
    // Three lease durations: B (an hour behind) stays a standby while A (an hour ahead) renews.
    await new Promise((resolve) => setTimeout(resolve, 3 * leaseSeconds * 1000));
    expect(b.term.from).toBeUndefined();
    expect(a.elector.isLeader).toBe(true);
    const cutAt = Date.now();
    aCut = true;
    aOffset = -hour;
    await expect.poll(() => b.term.from, { timeout: 15_000, interval: 50 }).toBeDefined();
    // A stepped down within its renew deadline (by its monotonic clock), before B started.
    expect(a.term.to).toBeDefined();
    expect((a.term.to ?? 0) - cutAt).toBeLessThan(1_300 + 2 * 250 + 1_000);
    expect(a.term.to ?? Infinity).toBeLessThanOrEqual(b.term.from ?? 0);
    expect((b.term.from ?? 0) - cutAt).toBeLessThan(leaseSeconds * 1000 + 2_000);
  });
});
