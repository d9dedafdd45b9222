import {
  breakerChannel,
  breakerStateOf,
  deleteAccessKey,
  deleteBedrockKey,
  deleteUser,
  findAccessKeyId,
  listRefs,
  readBreaker,
  revokeAccessKey,
  type Database,
  type KeyHasher,
  type KeyWrapper,
  type Logger,
} from '@ccproxy/core';
import type { Registry } from 'prom-client';
import { isWaitingReason, retrying, stalled, type ResourceStatus } from '../reconcile/conditions.ts';
import { reconcileAccessKey, type UserBinding } from '../reconcile/reconcile-access-key.ts';
import { reconcileBedrockKey } from '../reconcile/reconcile-bedrock-key.ts';
import { reconcileUser } from '../reconcile/reconcile-user.ts';
import { parseResource, type AccessKey, type BedrockKey, type ProxyUser } from '../resources.ts';
import type { KubeClient, KubeObject, Watched } from './kube-client.ts';
import { KubeSecretStore } from './kube-secret-store.ts';
import { firstSightStatus, readyOf, statusChanged, toKubeStatus, type KubeStatus } from './kube-status.ts';
import { operatorMetrics, type OperatorMetrics } from './operator-metrics.ts';
import { Reflector } from './reflector.ts';
import { WorkQueue } from './work-queue.ts';
import { userBinding } from './user-binding.ts';

export const finalizer = 'ccproxy.io/revoke';
type Kind = Exclude<Watched, 'Secret'>;
const kinds: readonly Kind[] = ['ProxyUser', 'AccessKey', 'BedrockKey'];
const tables = { ProxyUser: 'users', AccessKey: 'access_keys', BedrockKey: 'bedrock_keys' } as const;

export interface KubeOperatorOptions {
  client: KubeClient;
  db: Database;
  hashKey: KeyHasher;
  wrapper: KeyWrapper;
  logger: Logger;
  registry: Registry;
  rotationGraceSeconds: number;
  publicUrl: string | undefined;
  /** The proxy's breaker open period, to tell open from half-open in status. */
  breakerOpenMs: number;
  /** CCPROXY_BREAKER_WINDOW_MS (60 s by default): a failure streak older than this reads as closed. */
  breakerWindowMs?: number;
  /** Only this namespace (a Role instead of a ClusterRole); undefined = all. */
  namespace?: string;
  /** Successful resources are reconciled again this often (drift, e.g. a row deleted by hand). */
  resyncMs?: number;
  /**
   * How long after its creation a resource waits for what it references (its ProxyUser,
   * AccessKey or Secret) before it is Stalled with a Warning: a bundle applied in one go, in any
   * order, settles without either (CCPROXY_REFERENCE_WAIT_SECONDS, 60 s).
   */
  referenceWaitMs?: number;
  workers?: number;
  reflector?: { relistMs?: number; silenceMs?: number; backoff?: { baseMs: number; maxMs: number } };
  queue?: { baseDelayMs?: number; maxDelayMs?: number };
}

/**
 * The Kubernetes control plane: list/watch the three kinds and Secrets → a keyed work queue →
 * level-triggered reconciles (read the object from the cache, compute, apply to Postgres and
 * Secrets, compute conditions, patch status only when it changed). The reconcile logic is the
 * same source-agnostic core local mode uses.
 */
export class KubeOperator {
  readonly #o: KubeOperatorOptions;
  readonly #queue: WorkQueue;
  readonly #reflectors: Record<Watched, Reflector>;
  readonly #metrics: OperatorMetrics;
  readonly #stopped = Promise.withResolvers<undefined>();
  #isStopped = false;
  get metrics(): OperatorMetrics {
    return this.#metrics;
  }
  readonly #secrets: KubeSecretStore;
  /** access_keys.id → queue key, to follow breaker notifications. */
  readonly #keyIds = new Map<string, string>();
  #unlisten: (() => Promise<void>) | undefined;
  #workers: Promise<void> | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(options: KubeOperatorOptions) {
    this.#o = options;
    this.#metrics = operatorMetrics(options.registry);
    this.#queue = new WorkQueue({ ...options.queue, onDepth: (depth) => this.#metrics.queueDepth.set(depth) });
    this.#secrets = new KubeSecretStore(options.client);
    const reflector = (kind: Watched) =>
      new Reflector({
        kind,
        client: options.client,
        logger: options.logger,
        ...options.reflector,
        onChange: (key, object, previous) => this.#onChange(kind, key, object, previous),
        onRestart: (reason) => this.#metrics.watchRestarts.inc({ kind, reason }),
        // Secrets: only names and versions are kept; referenced ones are read fresh when used.
        ...(kind === 'Secret'
          ? {
              keep: ({ metadata: { name, namespace, uid, resourceVersion } }: KubeObject) => ({
                kind: 'Secret',
                metadata: { name, namespace, uid, resourceVersion },
              }),
            }
          : {}),
      });
    this.#reflectors = {
      ProxyUser: reflector('ProxyUser'),
      AccessKey: reflector('AccessKey'),
      BedrockKey: reflector('BedrockKey'),
      Secret: reflector('Secret'),
    };
  }

  /** Starts watching and working; resolves once every cache has synced. */
  async start(): Promise<void> {
    this.#unlisten = await this.#o.db.listen(breakerChannel, {
      onNotify: (id) => this.#enqueueKeyId(id),
      onRestored: () => this.#enqueueAll('AccessKey'),
    });
    for (const reflector of Object.values(this.#reflectors)) reflector.start();
    await Promise.race([
      Promise.all(Object.values(this.#reflectors).map((reflector) => reflector.synced)),
      this.#stopped.promise,
    ]);
    // Stopped before the caches synced (leadership lost during an API-server outage): no work starts.
    if (this.#isStopped) return;
    this.#workers = this.#queue.run((key) => this.#work(key), this.#o.workers ?? 2);
    await this.#enqueueOrphans();
    this.#pruneTimer = setInterval(
      () =>
        void this.#enqueueOrphans().catch((error: unknown) =>
          this.#o.logger.warn({ err: error }, 'orphan scan failed'),
        ),
      this.#o.resyncMs ?? 300_000,
    );
    this.#pruneTimer.unref();
  }

  get synced(): boolean {
    return this.#workers !== undefined;
  }

  async stop(): Promise<void> {
    this.#isStopped = true;
    this.#stopped.resolve(undefined);
    clearInterval(this.#pruneTimer);
    this.#queue.shutDown();
    await Promise.all(Object.values(this.#reflectors).map((reflector) => reflector.stop()));
    await this.#workers;
    await this.#unlisten?.().catch(() => undefined);
  }

  #onChange(kind: Watched, key: string, object: KubeObject | undefined, previous: KubeObject | undefined): void {
    // Our own status writes come back as updates; only spec and metadata changes need work.
    if (kind !== 'Secret' && object !== undefined && previous !== undefined && onlyStatusChanged(previous, object))
      return;
    const [namespace = '', name = ''] = key.split('/');
    if (kind !== 'Secret') this.#queue.add(`${kind}/${key}`);
    this.#enqueueDependents(kind, namespace, name);
    // AccessKeys that share (or shared) a Secret with this one: a conflict starts or ends here.
    // Only on real changes, not after every reconcile: two sharers would wake each other forever.
    if (kind === 'AccessKey')
      for (const secretName of new Set([secretNameOf(object), secretNameOf(previous)]))
        for (const sharer of this.#sharers(namespace, name, secretName))
          this.#queue.add(`AccessKey/${namespace}/${sharer}`);
  }

  /** Other live AccessKeys of the namespace naming the Secret `secretName`. */
  #sharers(namespace: string, name: string, secretName: string | undefined): string[] {
    if (secretName === undefined) return [];
    return [...this.#reflectors.AccessKey.values()]
      .filter(
        (o) =>
          o.metadata.namespace === namespace &&
          o.metadata.name !== name &&
          o.metadata.deletionTimestamp === undefined &&
          secretNameOf(o) === secretName,
      )
      .map((o) => o.metadata.name);
  }

  /** Whatever references the object is reconciled too (a BedrockKey waits for its AccessKey's row, say). */
  #enqueueDependents(kind: Watched, namespace: string, name: string): void {
    const spec = (o: KubeObject) =>
      (o.spec ?? {}) as {
        userRef?: { name?: string };
        accessKeyRef?: { name?: string };
        secretName?: string;
        secretRef?: { name?: string };
      };
    const dependents = (of: Kind, matches: (o: KubeObject) => boolean) => {
      for (const candidate of this.#reflectors[of].values())
        if (candidate.metadata.namespace === namespace && matches(candidate))
          this.#queue.add(`${of}/${namespace}/${candidate.metadata.name}`);
    };
    if (kind === 'ProxyUser') dependents('AccessKey', (o) => spec(o).userRef?.name === name);
    if (kind === 'AccessKey') dependents('BedrockKey', (o) => spec(o).accessKeyRef?.name === name);
    if (kind === 'Secret') {
      dependents('AccessKey', (o) => spec(o).secretName === name);
      dependents('BedrockKey', (o) => spec(o).secretRef?.name === name);
    }
  }

  #enqueueKeyId(id: string): void {
    const key = this.#keyIds.get(id);
    if (key !== undefined) this.#queue.add(key);
  }

  #enqueueAll(kind: Kind): void {
    for (const object of this.#reflectors[kind].values())
      this.#queue.add(`${kind}/${object.metadata.namespace}/${object.metadata.name}`);
  }

  /** Rows whose resource is gone (deleted while no operator ran, finalizer removed by hand): reconciled as deletions. */
  async #enqueueOrphans(): Promise<void> {
    for (const kind of kinds) {
      for (const row of await listRefs(this.#o.db, tables[kind])) {
        if (this.#o.namespace !== undefined && row.namespace !== this.#o.namespace) continue;
        if (this.#reflectors[kind].get(`${row.namespace}/${row.name}`) === undefined)
          this.#queue.add(`${kind}/${row.namespace}/${row.name}`);
      }
    }
  }

  async #work(key: string): Promise<void> {
    const [kind, namespace = '', name = ''] = key.split('/') as [Kind, string, string];
    const timer = this.#metrics.duration.startTimer({ kind });
    try {
      const requeueAfter = await this.#reconcile(kind, namespace, name);
      this.#queue.forget(key);
      // Rows dependents wait for may exist now; their reconciles are cheap when nothing changed.
      this.#enqueueDependents(kind, namespace, name);
      this.#metrics.reconciles.inc({ kind, result: 'success' });
      if (requeueAfter !== undefined) this.#queue.addAfter(key, requeueAfter);
    } catch (error) {
      this.#metrics.reconciles.inc({ kind, result: 'error' });
      this.#metrics.errors.inc({ kind });
      const delay = this.#queue.addRateLimited(key);
      this.#o.logger.warn({ resource: key, err: error, retryInMs: delay }, 'reconcile failed; will retry');
    } finally {
      timer();
    }
  }

  /** One level-triggered pass over one object; returns when to look again (ms), if at all. */
  async #reconcile(kind: Kind, namespace: string, name: string): Promise<number | undefined> {
    const object = this.#reflectors[kind].get(`${namespace}/${name}`);
    if (object === undefined) {
      await this.#cleanUp(kind, namespace, name);
      return undefined;
    }
    const finalizers = object.metadata.finalizers ?? [];
    if (object.metadata.deletionTimestamp !== undefined) {
      if (!finalizers.includes(finalizer)) return undefined;
      await this.#cleanUpBeforeRelease(kind, object);
      await this.#o.client.setFinalizers(
        kind,
        object,
        finalizers.filter((f) => f !== finalizer),
      );
      await this.#event(
        kind,
        object,
        'Normal',
        'CleanedUp',
        kind === 'AccessKey' ? 'Access key revoked and removed.' : `${kind} removed from the database.`,
      );
      return undefined;
    }
    // The finalizer goes on before any row exists, so no row can outlive its resource.
    if (!finalizers.includes(finalizer)) {
      await this.#o.client.setFinalizers(kind, object, [...finalizers, finalizer]);
      return undefined; // the update event brings the object back with its new resourceVersion
    }
    let binding = kind === 'AccessKey' ? this.#userBindingOf(object) : undefined;
    if (binding?.action === 'bind') {
      // Like the finalizer, the owner reference goes on before any row of the key exists. Then
      // on at once (no wait for the update event: a bundle's keys must not take a round trip
      // longer); the event's reconcile finds nothing left to do.
      await this.#o.client.patchMetadata(kind, object, {
        ownerReferences: binding.ownerReferences,
        annotations: binding.annotations,
      });
      binding = { action: 'reconcile', binding: { userUid: binding.userUid } };
    }
    const generation = object.metadata.generation ?? 0;
    if (object.status?.conditions === undefined) await this.#writeStatus(kind, object, firstSightStatus(generation));
    let computed: ResourceStatus;
    let extra: Record<string, unknown> = {};
    let requeueAfter = this.#o.resyncMs ?? 300_000;
    try {
      computed = await this.#compute(kind, object, binding?.action === 'reconcile' ? binding.binding : undefined);
      if (computed.retryInMs !== undefined) requeueAfter = Math.min(requeueAfter, computed.retryInMs);
      const keyId = kind === 'AccessKey' ? await findAccessKeyId(this.#o.db, namespace, name) : undefined;
      if (keyId !== undefined) this.#keyIds.set(keyId, `AccessKey/${namespace}/${name}`);
      if (kind === 'AccessKey') {
        const breaker = await this.#breakerStatus(keyId);
        extra = { breaker: breaker.status };
        if (breaker.changesInMs !== undefined) requeueAfter = Math.min(requeueAfter, breaker.changesInMs);
      }
    } catch (error) {
      // Transient (Postgres or KMS unreachable): say so, and let the queue back off.
      await this.#writeStatus(
        kind,
        object,
        retrying('DependencyUnavailable', `Waiting for the database or KMS: ${messageOf(error)}`),
      ).catch(() => undefined);
      throw error;
    }
    await this.#writeStatus(kind, object, computed, extra);
    return requeueAfter;
  }

  /** The AccessKey's ownerReference to its ProxyUser, against the ProxyUser the cache holds now. */
  #userBindingOf(object: KubeObject): ReturnType<typeof userBinding> {
    const userName = (object.spec as { userRef?: { name?: string } } | undefined)?.userRef?.name ?? '';
    const user = this.#reflectors.ProxyUser.get(`${object.metadata.namespace}/${userName}`);
    return userBinding(
      object.metadata,
      userName,
      user === undefined
        ? undefined
        : { uid: user.metadata.uid, terminating: user.metadata.deletionTimestamp !== undefined },
    );
  }

  async #compute(kind: Kind, object: KubeObject, binding?: UserBinding): Promise<ResourceStatus> {
    const { name, namespace, uid, generation } = object.metadata;
    const parsed = parseResource({
      apiVersion: object.apiVersion,
      kind,
      metadata: { name, namespace, uid, ...(generation === undefined ? {} : { generation }) },
      spec: object.spec,
    });
    if ('problems' in parsed) return stalled('InvalidSpec', parsed.problems.join('; '));
    const { db, hashKey, rotationGraceSeconds, publicUrl, wrapper } = this.#o;
    const created = Date.parse(object.metadata.creationTimestamp ?? '');
    const referenceWait = {
      ageMs: Number.isNaN(created) ? undefined : Date.now() - created,
      limitMs: this.#o.referenceWaitMs ?? 60_000,
    };
    if (kind === 'ProxyUser') return reconcileUser(db, parsed.resource as ProxyUser);
    if (kind === 'BedrockKey')
      return reconcileBedrockKey(parsed.resource as BedrockKey, { db, secrets: this.#secrets, wrapper, referenceWait });
    return (
      await reconcileAccessKey(
        parsed.resource as AccessKey,
        { db, secrets: this.#secrets, hashKey, rotationGraceSeconds, publicUrl, referenceWait, binding },
        this.#sharers(namespace, name, (parsed.resource as AccessKey).spec.secretName),
      )
    ).status;
  }

  async #breakerStatus(id: string | undefined): Promise<{ status: Record<string, string>; changesInMs?: number }> {
    const row = id === undefined ? undefined : await readBreaker(this.#o.db, id);
    const now = Date.now();
    const state = breakerStateOf(
      row,
      { openMs: this.#o.breakerOpenMs, windowMs: this.#o.breakerWindowMs ?? 60_000 },
      now,
    );
    const status: Record<string, string> = { state };
    if (row?.lastFailoverAt != null)
      status.lastFailoverAt = new Date(row.lastFailoverAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
    // An open breaker turns half-open by time alone: look again then.
    const changesInMs =
      state === 'open' && row?.openedAt != null ? row.openedAt + this.#o.breakerOpenMs - now + 100 : undefined;
    return changesInMs === undefined ? { status } : { status, changesInMs };
  }

  /**
   * The finalizer's work: revoke and remove the rows before the object may go. While that cannot
   * be done (Postgres unreachable) the object stays, and its status and a Warning say why; the
   * queue retries with backoff, and the finalizer is removed only once the database said yes.
   */
  async #cleanUpBeforeRelease(kind: Kind, object: KubeObject): Promise<void> {
    try {
      await this.#cleanUp(kind, object.metadata.namespace, object.metadata.name);
    } catch (error) {
      const what = kind === 'AccessKey' ? 'revoked' : 'removed from the database';
      await this.#writeStatus(
        kind,
        object,
        retrying(
          'CleanupPending',
          `Being deleted: it must be ${what} before finalizer ${finalizer} lets it go, and the database is unreachable (${messageOf(error)}). Retrying; it goes as soon as the database answers.`,
        ),
      ).catch(() => undefined);
      throw error;
    }
  }

  async #cleanUp(kind: Kind, namespace: string, name: string): Promise<void> {
    const { db } = this.#o;
    if (kind === 'AccessKey') {
      // Revoke first: even if the delete fails, the key is dead on every replica.
      await revokeAccessKey(db, namespace, name);
      await deleteAccessKey(db, namespace, name);
    } else if (kind === 'BedrockKey') await deleteBedrockKey(db, namespace, name);
    else await deleteUser(db, namespace, name);
  }

  async #writeStatus(
    kind: Kind,
    object: KubeObject,
    computed: ResourceStatus,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const previous = object.status;
    const next = toKubeStatus(previous, computed, object.metadata.generation ?? 0, new Date(), extra);
    if (!statusChanged(previous, next)) return;
    // A merge patch keeps fields it does not name: clear the ones that no longer apply.
    const cleared = Object.fromEntries(
      Object.keys(previous ?? {})
        .filter((field) => !(field in next))
        .map((field) => [field, null]),
    );
    await this.#o.client.patchStatus(kind, object.metadata.namespace, object.metadata.name, { ...cleared, ...next });
    object.status = next;
    await this.#announce(kind, object, previous, next);
  }

  /** An Event for every change of the Ready condition (reason or status), Warning when something is wrong. */
  async #announce(
    kind: Kind,
    object: KubeObject,
    previous: Record<string, unknown> | undefined,
    next: KubeStatus,
  ): Promise<void> {
    const before = readyOf(previous);
    const after = readyOf(next);
    if (after === undefined || (before?.status === after.status && before.reason === after.reason)) return;
    // Waiting for a reference (applied in the same bundle, say) is not a problem until it stalls.
    const problem = next.conditions.some(
      (c) =>
        (c.type === 'Stalled' && c.status === 'True') ||
        (c.type === 'Reconciling' && c.status === 'True' && c.reason !== 'Reconciling' && !isWaitingReason(c.reason)),
    );
    await this.#event(
      kind,
      object,
      problem ? 'Warning' : 'Normal',
      after.reason,
      after.message || `Ready is ${after.status}.`,
    );
  }

  async #event(
    kind: Kind,
    object: KubeObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    await this.#o.client
      .createEvent({ kind, object }, type, reason, message, 'ccproxy-operator')
      .catch((error: unknown) => this.#o.logger.debug({ err: error }, 'event not recorded'));
  }
}

/** controller-runtime's GenerationChangedPredicate, plus the metadata the operator acts on. */
function onlyStatusChanged(previous: KubeObject, next: KubeObject): boolean {
  const a = previous.metadata;
  const b = next.metadata;
  return (
    a.generation === b.generation &&
    a.deletionTimestamp === b.deletionTimestamp &&
    JSON.stringify(a.finalizers ?? []) === JSON.stringify(b.finalizers ?? []) &&
    JSON.stringify(a.ownerReferences ?? []) === JSON.stringify(b.ownerReferences ?? [])
  );
}

function secretNameOf(object: KubeObject | undefined): string | undefined {
  const secretName = (object?.spec as { secretName?: unknown } | undefined)?.secretName;
  return typeof secretName === 'string' ? secretName : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
