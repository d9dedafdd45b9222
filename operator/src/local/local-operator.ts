import { randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { relative, sep } from 'node:path';
import {
  claimBudgetCrossings,
  pruneBudgetCrossings,
  listRefs,
  type Database,
  type KeyHasher,
  type KeyWrapper,
  type Logger,
} from '@ccproxy/core';
import type { Registry } from 'prom-client';
import { kindOrder, kindSpec, type Kind, type KindResource } from '../kinds.ts';
import { operatorMetrics } from '../metrics.ts';
import type { ResourceStatus } from '../reconcile/conditions.ts';
import { dependencyFailure, stalled } from '../reconcile/conditions.ts';
import { refOf } from '../reconcile/object-ref.ts';
import { baseUrlFor, type AccessKeyOutcome } from '../reconcile/reconcile-access-key.ts';
import { LocalSecretStore } from './local-secret-store.ts';
import { readManifestFolder, type ManifestFile, type ManifestSnapshot } from './manifest-folder.ts';

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
  /**
   * How long a manifest must be unchanged before what it no longer holds is removed (default
   * 500 ms): a file still being written, cut at a document boundary, reads as valid YAML that
   * lacks its later documents. Until then its previous contents stand in for it.
   */
  settleMs?: number;
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
  #settle: NodeJS.Timeout | undefined;
  /** Each file as the last sync used it (see `settleMs`). */
  #files = new Map<string, ManifestFile>();
  /** Texts the admin is writing whole into files (relative paths): no settle window for them. */
  readonly #writtenWhole = new Map<string, string>();
  #running: Promise<SyncReport> | undefined;
  #queued: Promise<SyncReport> | undefined;
  #stopped = false;
  #last: SyncReport = { statuses: new Map(), readyKeys: [], problems: [] };
  #prunedAt = 0;
  readonly #metrics;

  constructor(options: LocalOperatorOptions) {
    this.#options = options;
    this.#secrets = new LocalSecretStore(options.dataDir);
    this.#metrics = operatorMetrics(options.registry, 'local');
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
      this.#metrics.folderWatchErrors.inc();
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
    clearTimeout(this.#settle);
    // A sync asked for during the last one would start as that one ends; none starts once stopped.
    while (this.#running !== undefined || this.#queued !== undefined)
      await (this.#queued ?? this.#running)?.catch(() => undefined);
  }

  /**
   * Announces a write of `text` into `file` (in the manifests folder) that lands whole (a rename):
   * the next sync that reads exactly that text uses it at once instead of waiting for the settle
   * window. The admin's folder store calls this before replacing one of its files.
   */
  expectWrite(file: string, text: string): void {
    this.#writtenWhole.set(relative(this.#options.manifestsDir, file), text);
  }

  /**
   * One sync at a time. A call during a sync gets the next one, which starts as that one ends
   * (callers meanwhile share it): the running sync may have read the folder before the caller's
   * change, and a caller that wrote a manifest and awaits `sync()` must see its change (it got
   * the running sync's older report when a watcher-started sync was under way; seen in a test).
   */
  sync(): Promise<SyncReport> {
    if (this.#running === undefined) {
      this.#running = this.#syncOnce().finally(() => (this.#running = undefined));
      return this.#running;
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#stopped ? this.#last : this.sync();
      });
    return this.#queued;
  }

  #scheduleSync(): void {
    // Editors write a file in several steps; one sync after the burst is enough.
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#syncLogged(), 50);
  }

  /** Files still settling are read again once the window has passed (a sync then applies what they hold). */
  #followSettling(settling: ManifestSnapshot['settling']): void {
    // Each file is named in the sync's problems (logged).
    if (settling.length === 0) return;
    // Without a watcher (a caller driving `sync()` itself) the caller syncs again.
    if (this.#watcher === undefined || this.#stopped) return;
    // Never longer than the window itself (a far-off `until` would overflow the timer into a spin).
    const wait = Math.min(Math.max(...settling.map((s) => s.until)) - Date.now(), this.#options.settleMs ?? 500);
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#scheduleSync(), Math.max(0, wait) + 10);
    this.#settle.unref();
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
    const snapshot = await readManifestFolder(this.#options.manifestsDir, {
      previous: this.#files,
      settleMs: this.#options.settleMs ?? 500,
      writtenWhole: this.#writtenWhole,
    });
    this.#files = snapshot.files;
    // An announced text is used once read; one overwritten by someone else waits the window.
    for (const [file, text] of this.#writtenWhole)
      if (snapshot.files.get(file)?.text === text) this.#writtenWhole.delete(file);
    this.#followSettling(snapshot.settling);
    for (const problem of snapshot.problems) log.warn(`ignored manifest: ${problem}`);
    this.#secrets.useFolderSecrets(
      snapshot.secrets,
      snapshot.refused.filter((refused) => refused.kind === 'Secret'),
    );
    const report: SyncReport = { statuses: new Map(), readyKeys: [], problems: snapshot.problems };
    for (const refused of snapshot.refused) {
      // A refused Secret has no status of its own: the resources reading it report it (local-secret-store.ts).
      if (refused.kind === 'Secret') continue;
      const ref = refOf(refused);
      report.statuses.set(`${refused.kind}/${ref.namespace}/${ref.name}`, stalled('InvalidSpec', refused.message));
    }
    await this.#assignUids(snapshot);
    // A file that cannot be read whole (a syntax error, or an editor half-way through saving it)
    // may hold resources that look gone: nothing is removed until every file reads whole.
    const whole = snapshot.unreadable.length === 0;
    if (!whole) log.warn({ files: snapshot.unreadable }, 'removing nothing while these manifests cannot be read whole');
    // What is gone goes first (revoked, then removed, then its generated Secrets): a resource
    // created again under the same name then starts from nothing, with a new uid and a new key.
    const pruned = whole ? await this.#prune(snapshot) : new Set<string>();
    const liveKeys = new Set(snapshot.accessKeys.map((key) => uidKey(refOf(key))));
    // A refused AccessKey is Stalled, not gone: its Secret stays with it.
    const refusedKeys = new Set(snapshot.refused.filter((r) => r.kind === 'AccessKey').map((r) => refKey(refOf(r))));
    // Garbage: the Secrets of an AccessKey this sync removed, and those recording the uid of an
    // AccessKey that is not there (the operator generated them; the admin's carry no uid and are
    // judged by name only, as one may be written just before its AccessKey's file).
    if (whole)
      await this.#secrets.collectGarbage(
        (namespace, owner) =>
          owner.kind === 'AccessKey' &&
          !refusedKeys.has(refKey({ namespace, name: owner.name })) &&
          (pruned.has(refKey({ namespace, name: owner.name })) ||
            (owner.uid !== undefined && !liveKeys.has(uidKey({ namespace, name: owner.name, uid: owner.uid })))),
      );
    await this.#reconcileAll(snapshot, report);
    this.#logTransitions(report);
    await this.#logBudgetCrossings();
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

  /** Every kind of the table, in its order (what is referenced first). */
  async #reconcileAll(snapshot: ManifestSnapshot, report: SyncReport): Promise<void> {
    const { db, hashKey, rotationGraceSeconds, publicUrl, wrapper } = this.#options;
    const context = { db, secrets: this.#secrets, hashKey, rotationGraceSeconds, publicUrl, wrapper };
    for (const kind of kindOrder) {
      for (const resource of resourcesOf(snapshot, kind)) {
        const ref = refOf(resource);
        let outcome: AccessKeyOutcome;
        try {
          outcome = await kindSpec(kind).reconcile(resource, { ...context, sharers: sharersOf(snapshot, resource) });
        } catch (error) {
          outcome = { status: this.#failed(error) };
        }
        report.statuses.set(`${kind}/${ref.namespace}/${ref.name}`, outcome.status);
        const user = kindSpec(kind).references(resource.spec).ProxyUser;
        if (outcome.key !== undefined && user !== undefined && isUserActive(snapshot, ref.namespace, user))
          report.readyKeys.push({
            namespace: ref.namespace,
            name: ref.name,
            user,
            baseUrl: baseUrlFor(publicUrl, outcome.key),
          });
      }
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
    for (const kind of kindOrder) {
      const rows = await listRefs(this.#options.db, kindSpec(kind).table);
      const uids = new Map(rows.map((row) => [refKey(row), row.uid]));
      for (const resource of resourcesOf(snapshot, kind))
        resource.metadata.uid ??= uids.get(refKey(refOf(resource))) ?? `local:${randomUUID()}`;
    }
  }

  /**
   * Revokes and removes the rows of resources no longer in the folder, dependents first (each
   * kind's clean-up: an AccessKey is revoked before its row goes, as the Kubernetes finalizer
   * does); returns the AccessKeys removed.
   */
  async #prune(snapshot: ManifestSnapshot): Promise<Set<string>> {
    const { db } = this.#options;
    const pruned = new Set<string>();
    for (const kind of [...kindOrder].reverse()) {
      // A refused document keeps what its last valid version wrote (it is Stalled, not deleted).
      const kept = new Set(
        [...resourcesOf(snapshot, kind), ...snapshot.refused.filter((r) => r.kind === kind)].map((o) =>
          refKey(refOf(o)),
        ),
      );
      for (const row of await listRefs(db, kindSpec(kind).table)) {
        if (kept.has(refKey(row))) continue;
        await kindSpec(kind).cleanUp(db, row.namespace, row.name);
        if (kind === 'AccessKey') pruned.add(refKey(row));
      }
    }
    return pruned;
  }

  /**
   * Local mode's Events: each budget crossing the proxy recorded (soft limit, exhausted), once,
   * as a warning line naming the resource, the budget and when it resets.
   */
  async #logBudgetCrossings(): Promise<void> {
    // As the Kubernetes operator does: periods over for a week go, first and at most hourly.
    if (Date.now() - this.#prunedAt >= 3_600_000) {
      this.#prunedAt = Date.now();
      await pruneBudgetCrossings(this.#options.db).catch((error: unknown) =>
        this.#options.logger.warn({ err: error }, 'old budget crossings could not be deleted'),
      );
    }
    const crossings = await claimBudgetCrossings(this.#options.db, undefined).catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, 'budget crossings could not be read');
      return [];
    });
    for (const { resource, kind, message } of crossings)
      this.#options.logger.warn(
        {
          resource: resource === undefined ? undefined : `${resource.kind}/${resource.namespace}/${resource.name}`,
          reason: kind === 'SoftLimit' ? 'BudgetSoftLimit' : 'BudgetExhausted',
        },
        message,
      );
  }

  #failed(error: unknown): ResourceStatus {
    this.#options.logger.warn({ err: error }, 'reconcile failed; will retry');
    return dependencyFailure(error);
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

/** The resources of one kind in the snapshot. */
function resourcesOf(snapshot: ManifestSnapshot, kind: Kind): readonly KindResource[] {
  return {
    ProxyUser: snapshot.users,
    AccessKey: snapshot.accessKeys,
    BedrockKey: snapshot.bedrockKeys,
    TeamBudget: snapshot.teamBudgets,
  }[kind];
}

/** The other AccessKeys of the namespace naming the same Secret (see `reconcileAccessKey`); none for other kinds. */
function sharersOf(snapshot: ManifestSnapshot, resource: KindResource): string[] {
  if (resource.kind !== 'AccessKey') return [];
  const ref = refOf(resource);
  return snapshot.accessKeys
    .filter((other) => other !== resource && other.spec.secretName === resource.spec.secretName)
    .map(refOf)
    .filter((other) => other.namespace === ref.namespace && other.name !== ref.name)
    .map((other) => other.name);
}

function isUserActive(snapshot: ManifestSnapshot, namespace: string, name: string): boolean {
  const user = snapshot.users.find((candidate) => refKey(refOf(candidate)) === `${namespace}/${name}`);
  return user !== undefined && !user.spec.suspended;
}
