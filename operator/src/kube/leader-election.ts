import type { Logger } from '@ccproxy/core';
import { statusOf, type KubeClient, type LeaseObject } from './kube-client.ts';
import { microTime } from './kube-wire.ts';

export interface LeaderElectionOptions {
  client: Pick<KubeClient, 'readLease' | 'createLease' | 'replaceLease'>;
  namespace: string;
  name: string;
  /** This replica (the pod name). */
  identity: string;
  logger: Logger;
  /** controller-runtime's defaults: 15 s lease, renew within 10 s, retry every 2 s. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Where time comes from (tests skew or jump it); the system clocks by default. */
  clock?: LeaderClock;
}

/**
 * The two clocks an elector reads: a monotonic one for every duration it times (lease expiry,
 * renew deadline), and the wall clock only for the `renewTime`/`acquireTime` it writes, which
 * are informational to other replicas (they never compare them with their own wall clock).
 */
export interface LeaderClock {
  monotonicMs(): number;
  wall(): Date;
}

const systemClock: LeaderClock = { monotonicMs: () => performance.now(), wall: () => new Date() };

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: the holder renews every
 * retry period; another replica takes over once it has seen the Lease unchanged for a whole
 * lease duration **by its own clock** (client-go's `observedTime`), so replicas whose clocks
 * disagree still agree on expiry: the holder's `renewTime` is never compared with the local
 * clock. Every write carries the resourceVersion it read, so two candidates cannot both win. A
 * leader that cannot renew within the renew deadline steps down (it stops working before another
 * can start).
 */
export class LeaderElector {
  readonly #options: Required<LeaderElectionOptions>;
  #stopped = false;
  #leading = false;
  #reachable = true;
  #wake: (() => void) | undefined;
  /** The Lease record last read and when (local monotonic ms) it was first seen: client-go's observedRecord/observedTime. */
  #observed: { record: string; at: number } | undefined;

  constructor(options: LeaderElectionOptions) {
    this.#options = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: systemClock,
      ...options,
    };
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Whether the last read or write of the Lease reached the API server (readiness reports it). */
  get apiReachable(): boolean {
    return this.#reachable;
  }

  /**
   * Campaigns until elected, calls `lead` with a signal that aborts when leadership is lost,
   * and resolves when leadership ended (lost, or `stop()`).
   */
  async run(lead: (lost: AbortSignal) => void): Promise<void> {
    while (!this.#stopped && !(await this.#attempt())) await this.#sleep(this.#options.retryPeriodMs);
    if (this.#stopped) return;
    this.#leading = true;
    this.#options.logger.info(
      { lease: `${this.#options.namespace}/${this.#options.name}`, identity: this.#options.identity },
      'became leader',
    );
    const lost = new AbortController();
    lead(lost.signal);
    // The renew deadline is timed on the monotonic clock: a wall clock set back must not keep a
    // leader that cannot renew (two leaders), nor one set forward depose a healthy one.
    const { clock } = this.#options;
    let lastRenew = clock.monotonicMs();
    while (!this.#stopped) {
      await this.#sleep(this.#options.retryPeriodMs);
      if (this.#stopped) break;
      if (await this.#attempt()) lastRenew = clock.monotonicMs();
      else if (clock.monotonicMs() - lastRenew > this.#options.renewDeadlineMs) break;
    }
    this.#leading = false;
    if (!this.#stopped) this.#options.logger.error('lost leadership (could not renew the lease in time)');
    lost.abort();
  }

  /** Stops campaigning; a leader hands the Lease back so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    if (!this.#leading) return;
    this.#leading = false;
    const lease = await this.#options.client
      .readLease(this.#options.namespace, this.#options.name)
      .catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.#options.identity) return;
    lease.spec = {
      ...lease.spec,
      holderIdentity: '',
      leaseDurationSeconds: 1,
      renewTime: microTime(this.#options.clock.wall().getTime()),
    };
    await this.#options.client.replaceLease(this.#options.namespace, lease).catch(() => undefined);
  }

  /**
   * One try, bounded by the renew deadline: an API server that accepts connections but never
   * answers must not keep a leader that cannot renew from stepping down.
   */
  async #attempt(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        this.#reachable = false;
        this.#options.logger.warn('lease read or write did not answer within the renew deadline');
        resolve(false);
      }, this.#options.renewDeadlineMs);
    });
    try {
      return await Promise.race([this.#tryAcquireOrRenew(), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationMs, clock } = this.#options;
    const now = microTime(clock.wall().getTime());
    const seconds = Math.ceil(leaseDurationMs / 1000);
    try {
      const lease = await client.readLease(namespace, name);
      this.#reachable = true;
      if (lease === undefined) {
        await client.createLease(namespace, {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: seconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const held = spec.holderIdentity !== undefined && spec.holderIdentity !== '' && spec.holderIdentity !== identity;
      if (held && !this.#expired(lease)) return false;
      const transition = spec.holderIdentity !== identity;
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: seconds,
        renewTime: now,
        ...(transition ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      };
      await client.replaceLease(namespace, lease);
      return true;
    } catch (error) {
      // 409: someone else wrote the Lease first; anything else: the API server is unreachable.
      const conflict = statusOf(error) === 409;
      this.#reachable = conflict;
      if (!conflict) this.#options.logger.warn({ err: error }, 'lease update failed');
      return false;
    }
  }

  /**
   * Expired when this replica has seen the same record for longer than its lease duration, timed
   * on the local monotonic clock from the moment the record changed.
   */
  #expired(lease: LeaseObject): boolean {
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ''}|${String(spec.renewTime ?? '')}|${lease.metadata?.resourceVersion ?? ''}`;
    const now = this.#options.clock.monotonicMs();
    if (this.#observed?.record !== record) this.#observed = { record, at: now };
    return this.#observed.at + (spec.leaseDurationSeconds ?? 15) * 1000 <= now;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
