import { randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { sep } from 'node:path';
import {
  deleteBedrockKey,
  deleteUser,
  listRefs,
  revokeAccessKey,
  deleteAccessKey,
  type Database,
  type KeyHasher,
  type KeyWrapper,
  type Logger,
} from '@ccproxy/core';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ResourceStatus } from '../reconcile/conditions.ts';
import { retrying, stalled } from '../reconcile/conditions.ts';
import { refOf } from '../reconcile/object-ref.ts';
import { reconcileAccessKey, baseUrlFor } from '../reconcile/reconcile-access-key.ts';
import { reconcileUser } from '../reconcile/reconcile-user.ts';
import { reconcileBedrockKey } from '../reconcile/reconcile-bedrock-key.ts';
import type { AccessKey } from '../resources.ts';
import { LocalSecretStore } from './local-secret-store.ts';
import { readManifestFolder, type ManifestSnapshot } from './manifest-folder.ts';

export interface LocalOperatorOptions {
  manifestsDir: string;
  dataDir: string;
  db: Database;
  hashKey: KeyHasher;
  /** Encrypts Bedrock API keys (the local key file in local mode). */
  wrapper: KeyWrapper;
  logger: Logger;
  rotationGraceSeconds: number;
  publicUrl: string;
  /** Full resync period, in case a file event was missed. */
  resyncMs?: number;
  /** Where the operator's metrics go; the process registry in `ccproxy local`. */
  registry?: Registry;
}

export interface ReadyKey {
  namespace: string;
  name: string;
  user: string;
  baseUrl: string;
}

export interface SyncReport {
  statuses: Map<string, ResourceStatus>;
  readyKeys: ReadyKey[];
  problems: string[];
}

/**
 * Local mode's control plane: the manifests folder is the source of truth. Every sync is
 * level-triggered (the whole folder is read and every resource reconciled; rows whose resource
 * is gone are revoked, then deleted), so a missed or duplicated file event cannot leave drift.
 */
export class LocalOperator {
  readonly #options: LocalOperatorOptions;
  readonly #secrets: LocalSecretStore;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #running: Promise<SyncReport> | undefined;
  #again = false;
  #stopped = false;
  #last: SyncReport = { statuses: new Map(), readyKeys: [], problems: [] };
  readonly #metrics;

  constructor(options: LocalOperatorOptions) {
    this.#options = options;
    this.#secrets = new LocalSecretStore(options.dataDir);
    const registers = options.registry === undefined ? [] : [options.registry];
    this.#metrics = {
      reconciles: new Counter({
        name: 'ccproxy_operator_reconciles_total',
        help: 'Resources reconciled, by kind and result.',
        labelNames: ['kind', 'result'] as const,
        registers,
      }),
      syncSeconds: new Histogram({
        name: 'ccproxy_operator_sync_duration_seconds',
        help: 'Time of one full sync of the manifests folder.',
        buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30],
        registers,
      }),
      syncErrors: new Counter({
        name: 'ccproxy_operator_sync_errors_total',
        help: 'Syncs that failed as a whole (e.g. the folder could not be read).',
        registers,
      }),
      watchRestarts: new Counter({
        name: 'ccproxy_operator_watch_errors_total',
        help: 'Errors of the folder watch (the periodic resync keeps working).',
        registers,
      }),
    };
  }

  get lastReport(): SyncReport {
    return this.#last;
  }

  /** Syncs once, then follows the folder until `stop()`. */
  async start(): Promise<SyncReport> {
    this.#stopped = false;
    const report = await this.sync();
    // Only manifest files matter (the data dir may sit inside the folder; its writes must not
    // trigger syncs). A null name (some platforms) is treated as "something changed".
    this.#watcher = watch(this.#options.manifestsDir, { recursive: true }, (_event, name) => {
      if (name === null || (/\.ya?ml$/.test(name) && !name.split(sep).some((part) => part.startsWith('.'))))
        this.#scheduleSync();
    });
    this.#watcher.on('error', (error) => {
      this.#metrics.watchRestarts.inc();
      this.#options.logger.warn({ err: error }, 'manifest folder watch failed; relying on periodic resync');
    });
    this.#timer = setInterval(() => this.#scheduleSync(), this.#options.resyncMs ?? 10_000);
    this.#timer.unref();
    return report;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    // A sync asked for during the last one would start as that one ends; none starts once stopped.
    while (this.#running !== undefined) await this.#running.catch(() => undefined);
  }

  /** One sync at a time; a request during a sync runs one more right after it. */
  sync(): Promise<SyncReport> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#syncOnce().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.#syncLogged();
      }
    });
    return this.#running;
  }

  #scheduleSync(): void {
    // Editors write a file in several steps; one sync after the burst is enough.
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#syncLogged(), 50);
  }

  /** A sync nobody awaits: its failure is counted and logged, never an unhandled rejection. */
  #syncLogged(): void {
    this.sync().catch((error: unknown) => {
      this.#metrics.syncErrors.inc();
      this.#options.logger.error({ err: error }, 'local sync failed');
    });
  }

  async #syncOnce(): Promise<SyncReport> {
    const log = this.#options.logger;
    const timer = this.#metrics.syncSeconds.startTimer();
    const snapshot = await readManifestFolder(this.#options.manifestsDir);
    for (const problem of snapshot.problems) log.warn(`ignored manifest: ${problem}`);
    this.#secrets.useFolderSecrets(snapshot.secrets);
    const report: SyncReport = { statuses: new Map(), readyKeys: [], problems: snapshot.problems };
    for (const refused of snapshot.refused) {
      const ref = refOf(refused);
      report.statuses.set(`${refused.kind}/${ref.namespace}/${ref.name}`, stalled('InvalidSpec', refused.message));
    }
    await this.#assignUids(snapshot);
    // What is gone goes first (revoked, then removed, then its generated Secrets): a resource
    // created again under the same name then starts from nothing, with a new uid and a new key.
    const pruned = await this.#prune(snapshot);
    const liveKeys = new Set(snapshot.accessKeys.map((key) => uidKey(refOf(key))));
    // A refused AccessKey is Stalled, not gone: its Secret stays with it.
    const refusedKeys = new Set(snapshot.refused.filter((r) => r.kind === 'AccessKey').map((r) => refKey(refOf(r))));
    // Garbage: the Secrets of an AccessKey this sync removed, and those recording the uid of an
    // AccessKey that is not there (the operator generated them; the admin's carry no uid and are
    // judged by name only, as one may be written just before its AccessKey's file).
    await this.#secrets.collectGarbage(
      (namespace, owner) =>
        owner.kind === 'AccessKey' &&
        !refusedKeys.has(refKey({ namespace, name: owner.name })) &&
        (pruned.has(refKey({ namespace, name: owner.name })) ||
          (owner.uid !== undefined && !liveKeys.has(uidKey({ namespace, name: owner.name, uid: owner.uid })))),
    );
    await this.#reconcileAll(snapshot, report);
    this.#logTransitions(report);
    for (const [id, status] of report.statuses) {
      const ready = status.conditions.find((condition) => condition.type === 'Ready');
      this.#metrics.reconciles.inc({
        kind: id.split('/', 1)[0] ?? 'unknown',
        result:
          ready?.status === 'True'
            ? 'ready'
            : status.conditions.some((c) => c.type === 'Reconciling' && c.status === 'True')
              ? 'retrying'
              : 'not_ready',
      });
    }
    timer();
    this.#last = report;
    return report;
  }

  async #reconcileAll(snapshot: ManifestSnapshot, report: SyncReport): Promise<void> {
    const { db, hashKey, rotationGraceSeconds, publicUrl } = this.#options;
    for (const user of snapshot.users) {
      const ref = refOf(user);
      report.statuses.set(`ProxyUser/${ref.namespace}/${ref.name}`, await this.#guard(() => reconcileUser(db, user)));
    }
    const deps = { db, secrets: this.#secrets, hashKey, rotationGraceSeconds, publicUrl };
    for (const key of snapshot.accessKeys) {
      const ref = refOf(key);
      let outcome;
      try {
        outcome = await reconcileAccessKey(key, deps, sharersOf(snapshot, key));
      } catch (error) {
        outcome = { status: this.#failed(error) };
      }
      report.statuses.set(`AccessKey/${ref.namespace}/${ref.name}`, outcome.status);
      if (outcome.key !== undefined && isUserActive(snapshot, ref.namespace, key.spec.userRef.name)) {
        report.readyKeys.push({
          namespace: ref.namespace,
          name: ref.name,
          user: key.spec.userRef.name,
          baseUrl: baseUrlFor(publicUrl, outcome.key),
        });
      }
    }
    const bedrockDeps = { db, secrets: this.#secrets, wrapper: this.#options.wrapper };
    for (const bedrockKey of snapshot.bedrockKeys) {
      const ref = refOf(bedrockKey);
      report.statuses.set(
        `BedrockKey/${ref.namespace}/${ref.name}`,
        await this.#guard(() => reconcileBedrockKey(bedrockKey, bedrockDeps)),
      );
    }
  }

  /**
   * Local resources have no uid of their own: each keeps the one its row was written with, and
   * one without a row gets a new one. So a resource a sync saw deleted (its row removed) and that
   * comes back under the same name is a new resource, as in Kubernetes: its old generated Secret
   * names another uid and is collected, and it gets a new key. (An editor's save, which replaces
   * the file between two syncs, is an edit, not a re-creation.)
   */
  async #assignUids(snapshot: ManifestSnapshot): Promise<void> {
    const groups = [
      ['users', snapshot.users],
      ['access_keys', snapshot.accessKeys],
      ['bedrock_keys', snapshot.bedrockKeys],
    ] as const;
    for (const [table, resources] of groups) {
      const uids = new Map((await listRefs(this.#options.db, table)).map((row) => [refKey(row), row.uid]));
      for (const resource of resources)
        resource.metadata.uid ??= uids.get(refKey(refOf(resource))) ?? `local:${randomUUID()}`;
    }
  }

  /** Revokes and removes the rows of resources no longer in the folder; returns the AccessKeys removed. */
  async #prune(snapshot: ManifestSnapshot): Promise<Set<string>> {
    const { db } = this.#options;
    // A refused document keeps what its last valid version wrote (it is Stalled, not deleted).
    const kept = (kind: string, valid: Array<{ kind: string; metadata: { name: string; namespace?: string } }>) =>
      new Set([...valid, ...snapshot.refused.filter((r) => r.kind === kind)].map((o) => refKey(refOf(o))));
    const keys = kept('AccessKey', snapshot.accessKeys);
    const pruned = new Set<string>();
    for (const row of await listRefs(db, 'access_keys')) {
      if (keys.has(refKey(row))) continue;
      // Revoke first, as the Kubernetes finalizer does, so the key is dead even if delete fails.
      await revokeAccessKey(db, row.namespace, row.name);
      await deleteAccessKey(db, row.namespace, row.name);
      pruned.add(refKey(row));
    }
    const bedrockKeys = kept('BedrockKey', snapshot.bedrockKeys);
    for (const row of await listRefs(db, 'bedrock_keys')) {
      if (!bedrockKeys.has(refKey(row))) await deleteBedrockKey(db, row.namespace, row.name);
    }
    const users = kept('ProxyUser', snapshot.users);
    for (const row of await listRefs(db, 'users')) {
      if (!users.has(refKey(row))) await deleteUser(db, row.namespace, row.name);
    }
    return pruned;
  }

  async #guard(work: () => Promise<ResourceStatus>): Promise<ResourceStatus> {
    try {
      return await work();
    } catch (error) {
      return this.#failed(error);
    }
  }

  #failed(error: unknown): ResourceStatus {
    this.#options.logger.warn({ err: error }, 'reconcile failed; will retry');
    return retrying('ReconcileError', error instanceof Error ? error.message : String(error));
  }

  #logTransitions(report: SyncReport): void {
    for (const [id, status] of report.statuses) {
      const before = this.#last.statuses.get(id);
      const readyNow = status.conditions.find((c) => c.type === 'Ready');
      const readyBefore = before?.conditions.find((c) => c.type === 'Ready');
      if (readyNow?.status === readyBefore?.status && readyNow?.reason === readyBefore?.reason) continue;
      this.#options.logger.info(
        { resource: id, ready: readyNow?.status, reason: readyNow?.reason, ...status.fields },
        readyNow?.message ?? '',
      );
    }
  }
}

const refKey = (ref: { namespace: string; name: string }) => `${ref.namespace}/${ref.name}`;
const uidKey = (ref: { namespace: string; name: string; uid?: string | undefined }) =>
  `${ref.namespace}/${ref.name}/${ref.uid ?? ''}`;

/** The other AccessKeys of the namespace naming the same Secret (see `reconcileAccessKey`). */
function sharersOf(snapshot: ManifestSnapshot, key: AccessKey): string[] {
  const ref = refOf(key);
  return snapshot.accessKeys
    .filter((other) => other !== key && other.spec.secretName === key.spec.secretName)
    .map(refOf)
    .filter((other) => other.namespace === ref.namespace && other.name !== ref.name)
    .map((other) => other.name);
}

function isUserActive(snapshot: ManifestSnapshot, namespace: string, name: string): boolean {
  const user = snapshot.users.find((candidate) => refKey(refOf(candidate)) === `${namespace}/${name}`);
  return user !== undefined && !user.spec.suspended;
}
