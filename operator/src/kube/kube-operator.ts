import {
  breakerChannel,
  breakerStateOf,
  findAccessKeyId,
  listRefs,
  readBreaker,
  type Database,
  type KeyHasher,
  type KeyWrapper,
  type Logger,
} from '@ccproxy/core';
import type { Registry } from 'prom-client';
import { kindOrder, kindSpec, type Kind, type KindResource } from '../kinds.ts';
import { operatorMetrics, type OperatorMetrics } from '../metrics.ts';
import { dependencyFailure, retrying, stalled, type ResourceStatus } from '../reconcile/conditions.ts';
import type { UserBinding } from '../reconcile/reconcile-access-key.ts';
import { parseResource } from '../resources.ts';
import { BudgetEvents, budgetEventReason } from './budget-events.ts';
import { DependentsIndex } from './dependents.ts';
import type { KubeClient, KubeObject, Watched } from './kube-client.ts';
import { KubeSecretStore, metadataOnly, trimmed } from './kube-secret-store.ts';
import { firstSightStatus, readyOf } from './kube-status.ts';
import { Reflector } from './reflector.ts';
import { StatusWriter } from './status-writer.ts';
import { ownerBindingOf, type BindingDecision } from './user-binding.ts';
import { WorkQueue } from './work-queue.ts';

export const finalizer = 'ccproxy.io/revoke';
/** A reconcile slower than this shows `Reconciling` first; a faster one writes its outcome only (one status write). */
const firstSightAfterMs = 3_000;
/**
 * Reconciles in flight at once. A reconcile is almost all waiting (Postgres, then two or three API
 * calls of 10–40 ms each on a busy API server), so two workers left the CPU idle while 5,000 keys
 * queued: measured at 1,000 keys, 145 ms per reconcile ÷ 2 workers was the whole 91 s to Ready.
 * One key is still never worked on by two workers (the queue's rule), and Postgres calls share
 * the pool's connections.
 */
const defaultWorkers = 16;

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
  /** Reconciles in flight at once (16). */
  workers?: number;
  reflector?: { relistMs?: number; silenceMs?: number; backoff?: { baseMs: number; maxMs: number } };
  queue?: { baseDelayMs?: number; maxDelayMs?: number };
}

/**
 * The Kubernetes control plane: list/watch the kinds and Secrets → a keyed work queue →
 * level-triggered reconciles (read the object from the cache, compute, apply to Postgres and
 * Secrets, compute conditions, patch status only when it changed). What each kind is — its
 * table, reconcile, clean-up, what it references — comes from the `kinds` table local mode
 * iterates too.
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
  readonly #dependents = new DependentsIndex();
  readonly #status: StatusWriter;
  /** access_keys.id → queue key, to follow breaker notifications. */
  readonly #keyIds = new Map<string, string>();
  /** Metadata patches in flight (queue key → the finalizers and owner references they set). */
  readonly #patching = new Map<string, string>();
  #unlisten: (() => Promise<void>) | undefined;
  readonly #budgetEvents: BudgetEvents;
  #workers: Promise<void> | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(options: KubeOperatorOptions) {
    this.#o = options;
    this.#metrics = operatorMetrics(options.registry, 'kube');
    this.#queue = new WorkQueue({ ...options.queue, onDepth: (depth) => this.#metrics.queueDepth.set(depth) });
    const reflector = (kind: Watched, keep: (object: KubeObject) => KubeObject) =>
      new Reflector({
        kind,
        client: options.client,
        logger: options.logger,
        ...options.reflector,
        keep,
        onChange: (key, object, previous) => this.#onChange(kind, key, object, previous),
        onRestart: (reason) => this.#metrics.watchRestarts.inc({ kind, reason }),
      });
    this.#reflectors = {
      ProxyUser: reflector('ProxyUser', withoutManagedFields),
      AccessKey: reflector('AccessKey', withoutManagedFields),
      BedrockKey: reflector('BedrockKey', withoutManagedFields),
      TeamBudget: reflector('TeamBudget', withoutManagedFields),
      // Generated Secrets with their data (reading one costs no request); every Secret by name only.
      Secret: reflector('Secret', trimmed),
      SecretMeta: reflector('SecretMeta', metadataOnly),
    };
    this.#secrets = new KubeSecretStore(options.client, {
      generated: this.#reflectors.Secret,
      metadata: this.#reflectors.SecretMeta,
    });
    this.#status = new StatusWriter(options.client, options.logger, (kind, object, basedOn) =>
      this.#reflectors[kind].inject(object, basedOn),
    );
    this.#budgetEvents = new BudgetEvents({
      db: options.db,
      logger: options.logger,
      namespace: options.namespace,
      announce: async ({ resource, kind, message }) => {
        const object = this.#reflectors[resource.kind].get(`${resource.namespace}/${resource.name}`);
        if (object === undefined) return false;
        await options.client.createEvent(
          { kind: resource.kind, object },
          'Warning',
          budgetEventReason(kind),
          message,
          'ccproxy-operator',
        );
        // status.budget shows the new state now, not at the next resync.
        this.#queue.add(`${resource.kind}/${resource.namespace}/${resource.name}`);
        return true;
      },
    });
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
    this.#workers = this.#queue.run((key) => this.#work(key), this.#o.workers ?? defaultWorkers);
    await this.#budgetEvents.start();
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
    await this.#budgetEvents.stop();
    this.#queue.shutDown();
    await Promise.all(Object.values(this.#reflectors).map((reflector) => reflector.stop()));
    await this.#workers;
    await this.#status.stop();
    await this.#unlisten?.().catch(() => undefined);
  }

  #onChange(watched: Watched, key: string, object: KubeObject | undefined, previous: KubeObject | undefined): void {
    const [namespace = '', name = ''] = key.split('/');
    if (watched === 'Secret' || watched === 'SecretMeta') {
      for (const dependent of this.#dependents.of('Secret', namespace, name)) this.#queue.add(dependent);
      return;
    }
    this.#dependents.update(watched, previous, object);
    // Our own status writes come back as updates; only spec and metadata changes need work.
    if (object !== undefined && previous !== undefined && onlyStatusChanged(previous, object)) return;
    // Nor does our own metadata patch whose watch event overtook its answer (on a busy API server
    // the watch often answers first): the reconcile that sent it goes on with the patched object.
    if (
      object !== undefined &&
      previous !== undefined &&
      this.#isOwnMetadataPatch(`${watched}/${key}`, previous, object)
    )
      return;
    this.#queue.add(`${watched}/${key}`);
    for (const dependent of this.#dependents.of(watched, namespace, name)) this.#queue.add(dependent);
    // AccessKeys that share (or shared) a Secret with this one: a conflict starts or ends here.
    // Only on real changes, not after every reconcile: two sharers would wake each other forever.
    if (watched === 'AccessKey')
      for (const secretName of new Set([secretNameOf(object), secretNameOf(previous)]))
        for (const sharer of this.#sharers(namespace, name, secretName))
          this.#queue.add(`AccessKey/${namespace}/${sharer}`);
  }

  #isOwnMetadataPatch(queueKey: string, previous: KubeObject, next: KubeObject): boolean {
    const expected = this.#patching.get(queueKey);
    return (
      expected !== undefined &&
      previous.metadata.generation === next.metadata.generation &&
      previous.metadata.deletionTimestamp === next.metadata.deletionTimestamp &&
      ownMetadataOf(next.metadata) === expected
    );
  }

  /** Other live AccessKeys of the namespace naming the Secret `secretName`. */
  #sharers(namespace: string, name: string, secretName: string | undefined): string[] {
    if (secretName === undefined) return [];
    return this.#dependents
      .of('Secret', namespace, secretName)
      .filter((key) => key.startsWith('AccessKey/') && key !== `AccessKey/${namespace}/${name}`)
      .map((key) => this.#reflectors.AccessKey.get(key.slice('AccessKey/'.length)))
      .filter((o) => o !== undefined && o.metadata.deletionTimestamp === undefined && secretNameOf(o) === secretName)
      .map((o) => o?.metadata.name ?? '');
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
    for (const kind of kindOrder) {
      for (const row of await listRefs(this.#o.db, kindSpec(kind).table)) {
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
      const { requeueAfter, readyChanged } = await this.#reconcile(kind, namespace, name);
      this.#queue.forget(key);
      // Rows dependents wait for may exist now — only when this object's Ready changed (its row
      // appeared, went or was refused): a user's ten keys are not all reconciled again after each
      // resync of the user. A spec change of the user still wakes them (#onChange).
      if (readyChanged) for (const dependent of this.#dependents.of(kind, namespace, name)) this.#queue.add(dependent);
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

  /**
   * One level-triggered pass over one object; returns when to look again (ms), if at all, and
   * whether its Ready condition (status or reason) changed — gone counts as changed.
   */
  async #reconcile(
    kind: Kind,
    namespace: string,
    name: string,
  ): Promise<{ requeueAfter?: number; readyChanged: boolean }> {
    const spec = kindSpec(kind);
    const cached = this.#reflectors[kind].get(`${namespace}/${name}`);
    if (cached === undefined) {
      await spec.cleanUp(this.#o.db, namespace, name);
      return { readyChanged: true };
    }
    if (cached.metadata.deletionTimestamp !== undefined) {
      await this.#release(kind, cached);
      return { readyChanged: true };
    }
    const readyBefore = readyOf(cached.status);
    const { object, binding } = await this.#ensureMetadata(kind, cached);
    // The first status waits for the outcome (one write, not two) unless the reconcile is slow.
    const firstSight =
      object.status?.conditions === undefined
        ? setTimeout(
            () =>
              void this.#status
                .write(kind, object, firstSightStatus(object.metadata.generation ?? 0))
                .catch(() => undefined),
            firstSightAfterMs,
          )
        : undefined;
    let computed: ResourceStatus;
    let extra: Record<string, unknown> = {};
    let requeueAfter = this.#o.resyncMs ?? 300_000;
    try {
      computed = await this.#compute(kind, object, binding);
      if (computed.retryInMs !== undefined) requeueAfter = Math.min(requeueAfter, computed.retryInMs);
      if (spec.showsBreaker === true) {
        const breaker = await this.#breakerStatus(namespace, name);
        extra = { breaker: breaker.status };
        if (breaker.changesInMs !== undefined) requeueAfter = Math.min(requeueAfter, breaker.changesInMs);
      }
    } catch (error) {
      clearTimeout(firstSight);
      // Transient (Postgres or KMS unreachable): say which, and let the queue back off.
      await this.#status.write(kind, object, dependencyFailure(error)).catch(() => undefined);
      throw error;
    }
    clearTimeout(firstSight);
    await this.#status.write(kind, object, computed, extra);
    const readyAfter = readyOf(object.status);
    const readyChanged = readyBefore?.status !== readyAfter?.status || readyBefore?.reason !== readyAfter?.reason;
    return { requeueAfter, readyChanged };
  }

  /**
   * Metadata before any row exists, in one patch: the finalizer, and the owner reference to the
   * owning kind's object (an AccessKey's ProxyUser) once it exists. The reconcile goes on with the
   * patched object at once (no round trip through the watch; its event is then no change).
   */
  async #ensureMetadata(kind: Kind, object: KubeObject): Promise<{ object: KubeObject; binding?: UserBinding }> {
    const finalizers = object.metadata.finalizers ?? [];
    const patch: Parameters<KubeClient['patchMetadata']>[2] = {};
    if (!finalizers.includes(finalizer)) patch.finalizers = [...finalizers, finalizer];
    const decision = this.#ownerBindingOf(kind, object);
    let binding = decision?.action === 'reconcile' ? decision.binding : undefined;
    if (decision?.action === 'bind') {
      patch.ownerReferences = decision.ownerReferences;
      patch.annotations = decision.annotations;
      binding = { userUid: decision.userUid };
    }
    if (Object.keys(patch).length === 0) return { object, ...(binding === undefined ? {} : { binding }) };
    const key = `${kind}/${object.metadata.namespace}/${object.metadata.name}`;
    this.#patching.set(key, ownMetadataOf({ ...object.metadata, ...patch }));
    let patched: KubeObject;
    try {
      patched = withoutManagedFields(await this.#o.client.patchMetadata(kind, object, patch));
    } finally {
      this.#patching.delete(key);
    }
    this.#reflectors[kind].inject(patched, object.metadata.resourceVersion);
    return { object: patched, ...(binding === undefined ? {} : { binding }) };
  }

  /** The object's ownerReference to its owner (kinds table `ownedBy`), against the owner the cache holds now. */
  #ownerBindingOf(kind: Kind, object: KubeObject): BindingDecision | undefined {
    return ownerBindingOf(kind, object, object.metadata.namespace, (owner, namespace, name) => {
      const live = this.#reflectors[owner].get(`${namespace}/${name}`);
      return live === undefined
        ? undefined
        : { uid: live.metadata.uid, terminating: live.metadata.deletionTimestamp !== undefined };
    });
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
    const created = Date.parse(object.metadata.creationTimestamp ?? '');
    const { db, hashKey, rotationGraceSeconds, publicUrl, wrapper } = this.#o;
    const outcome = await kindSpec(kind).reconcile(parsed.resource as KindResource, {
      db,
      secrets: this.#secrets,
      hashKey,
      wrapper,
      rotationGraceSeconds,
      publicUrl,
      referenceWait: {
        ageMs: Number.isNaN(created) ? undefined : Date.now() - created,
        limitMs: this.#o.referenceWaitMs ?? 60_000,
      },
      ...(binding === undefined ? {} : { binding }),
      sharers: this.#sharers(namespace, name, secretNameOf(object)),
    });
    return outcome.status;
  }

  async #breakerStatus(
    namespace: string,
    name: string,
  ): Promise<{ status: Record<string, string>; changesInMs?: number }> {
    const id = await findAccessKeyId(this.#o.db, namespace, name);
    if (id !== undefined) this.#keyIds.set(id, `AccessKey/${namespace}/${name}`);
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
   * The finalizer's work: clean up (an AccessKey revoked first) before the object may go. While
   * that cannot be done (Postgres unreachable) the object stays, and its status and a Warning say
   * why; the queue retries with backoff, and the finalizer is removed only once the database said yes.
   */
  async #release(kind: Kind, object: KubeObject): Promise<void> {
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) return;
    const spec = kindSpec(kind);
    try {
      await spec.cleanUp(this.#o.db, object.metadata.namespace, object.metadata.name);
    } catch (error) {
      await this.#status
        .write(
          kind,
          object,
          retrying(
            'CleanupPending',
            `Being deleted: it must be ${spec.cleanedUp.pending} before finalizer ${finalizer} lets it go, and the database is unreachable (${messageOf(error)}). Retrying; it goes as soon as the database answers.`,
          ),
        )
        .catch(() => undefined);
      throw error;
    }
    await this.#o.client.setFinalizers(
      kind,
      object,
      finalizers.filter((f) => f !== finalizer),
    );
    await this.#status.event(kind, object, 'Normal', 'CleanedUp', spec.cleanedUp.done);
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

/** The metadata the operator patches (finalizers, owner references), in a form independent of key order. */
function ownMetadataOf(metadata: Pick<KubeObject['metadata'], 'finalizers' | 'ownerReferences'>): string {
  const references = (metadata.ownerReferences ?? []).map((r) =>
    [r.apiVersion, r.kind, r.name, r.uid, r.controller === true, r.blockOwnerDeletion === true].join('|'),
  );
  return JSON.stringify([metadata.finalizers ?? [], references]);
}

/** The cache keeps no managedFields: they are most of an object's size and nothing here reads them. */
function withoutManagedFields(object: KubeObject): KubeObject {
  const { managedFields: _dropped, ...metadata } = object.metadata as KubeObject['metadata'] & {
    managedFields?: unknown;
  };
  return { ...object, metadata };
}

function secretNameOf(object: KubeObject | undefined): string | undefined {
  const secretName = (object?.spec as { secretName?: unknown } | undefined)?.secretName;
  return typeof secretName === 'string' ? secretName : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
