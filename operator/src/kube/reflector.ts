import type { Logger } from '@ccproxy/core';
import { statusOf, type KubeClient, type KubeObject, type Watched, type WatchEvent } from './kube-client.ts';

export interface ReflectorOptions {
  kind: Watched;
  client: Pick<KubeClient, 'list' | 'watch'>;
  logger: Logger;
  /** Called for every object that appeared, changed (new resourceVersion) or vanished (undefined). */
  onChange: (key: string, object: KubeObject | undefined, previous: KubeObject | undefined) => void;
  /** What to keep of an object (Secrets: drop `data`, the operator reads referenced ones fresh). */
  keep?: (object: KubeObject) => KubeObject;
  /** Full relist this often, to heal anything a watch missed. */
  relistMs?: number;
  /** A watch that has said nothing (not even a bookmark) this long is restarted. */
  silenceMs?: number;
  backoff?: { baseMs: number; maxMs: number };
  onRestart?: (reason: string) => void;
}

export const keyOf = (object: KubeObject) => `${object.metadata.namespace}/${object.metadata.name}`;

/**
 * List + watch into a cache, restarted on every error. client-node's informer stops on errors
 * other than 410 and can go silent; this one never stops: any error backs off (jittered,
 * exponential) and watches again from the last resourceVersion, 410 Gone relists, a silent watch
 * is restarted, and a periodic relist diffs the cache against the server.
 */
export class Reflector {
  readonly #options: Required<Omit<ReflectorOptions, 'keep' | 'onRestart'>> &
    Pick<ReflectorOptions, 'keep' | 'onRestart'>;
  readonly #cache = new Map<string, KubeObject>();
  #resourceVersion = '';
  #stopWatch: (() => void) | undefined;
  #running = false;
  #wake: (() => void) | undefined;
  #synced!: () => void;
  #hasSynced = false;
  /** Keys whose cached object came from `inject`: watch events older than it are not news. */
  readonly #injected = new Set<string>();
  readonly synced: Promise<void> = new Promise((resolve) => (this.#synced = resolve));
  #loop: Promise<void> | undefined;

  constructor(options: ReflectorOptions) {
    this.#options = {
      relistMs: 5 * 60_000,
      silenceMs: 2 * 60_000,
      backoff: { baseMs: 200, maxMs: 10_000 },
      ...options,
    };
  }

  get(key: string): KubeObject | undefined {
    return this.#cache.get(key);
  }

  values(): IterableIterator<KubeObject> {
    return this.#cache.values();
  }

  /** Whether the first list arrived (before it, an absent object says nothing). */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /**
   * An object as a write of the operator's own returned it (a patch or create response), put
   * into the cache at once, without a change notification: the reconcile that wrote it goes on
   * with it, and the watch event of that same resourceVersion, arriving later, is no change, so it
   * wakes no second reconcile and no re-read. Kept only when the cache still holds the version
   * the write started from (`basedOn`; undefined: the object was not cached), so a newer event
   * that arrived meanwhile is never replaced by an older write.
   */
  inject(object: KubeObject, basedOn: string | undefined): void {
    const kept = this.#withKind(object);
    const key = keyOf(kept);
    if (this.#cache.get(key)?.metadata.resourceVersion !== basedOn) return;
    this.#cache.set(key, kept);
    this.#injected.add(key);
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#stopWatch?.();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let needList = true;
    let lastList = 0;
    while (this.#running) {
      try {
        if (needList || Date.now() - lastList >= this.#options.relistMs) {
          await this.#relist();
          lastList = Date.now();
          needList = false;
        }
        const outcome = await this.#watchOnce(lastList + this.#options.relistMs);
        failures = 0;
        if (outcome === 'gone') needList = true;
      } catch (error) {
        if (!this.#running) break;
        failures += 1;
        if (statusOf(error) === 410) needList = true;
        const { baseMs, maxMs } = this.#options.backoff;
        const delay = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 20)) * (0.5 + Math.random());
        this.#options.onRestart?.('error');
        this.#options.logger.warn(
          { kind: this.#options.kind, err: error, retryInMs: Math.round(delay) },
          'list/watch failed; retrying',
        );
        await this.#sleep(delay);
      }
    }
  }

  async #relist(): Promise<void> {
    const { items, resourceVersion } = await this.#options.client.list(this.#options.kind);
    const seen = new Set<string>();
    for (const item of items) {
      const object = this.#withKind(item);
      seen.add(keyOf(object));
      this.#apply(object);
    }
    for (const [key, previous] of this.#cache) {
      if (seen.has(key)) continue;
      this.#cache.delete(key);
      this.#options.onChange(key, undefined, previous);
    }
    this.#resourceVersion = resourceVersion;
    this.#hasSynced = true;
    this.#synced();
  }

  /** One watch until it ends; 'gone' when the resourceVersion expired, 'ended' otherwise. Throws on errors. */
  async #watchOnce(relistAt: number): Promise<'gone' | 'ended'> {
    let lastHeard = Date.now();
    const result = await new Promise<'gone' | 'ended' | Error>((resolve) => {
      let settled = false;
      const finish = (value: 'gone' | 'ended' | Error) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        this.#stopWatch?.();
        this.#stopWatch = undefined;
        resolve(value);
      };
      const watchdog = setInterval(
        () => {
          if (!this.#running) finish('ended');
          else if (Date.now() - lastHeard > this.#options.silenceMs) {
            this.#options.onRestart?.('silent');
            finish('ended');
          } else if (Date.now() >= relistAt) finish('ended');
        },
        Math.min(1000, this.#options.silenceMs),
      );
      watchdog.unref();
      this.#wake = () => finish('ended');
      const onEvent = (event: WatchEvent) => {
        lastHeard = Date.now();
        if (event.type === 'BOOKMARK') {
          this.#resourceVersion = event.resourceVersion;
          return;
        }
        const object = this.#withKind(event.object);
        this.#resourceVersion = object.metadata.resourceVersion;
        if (event.type === 'DELETED') {
          const previous = this.#cache.get(keyOf(object));
          this.#cache.delete(keyOf(object));
          this.#options.onChange(keyOf(object), undefined, previous);
        } else this.#apply(object);
      };
      const onDone = (error?: unknown) => {
        if (error === undefined || isTimeout(error)) finish('ended');
        else if (statusOf(error) === 410) finish('gone');
        else finish(error instanceof Error ? error : new Error(String(error)));
      };
      this.#options.client.watch(this.#options.kind, this.#resourceVersion, onEvent, onDone).then(
        (stop) => (settled ? stop() : (this.#stopWatch = stop)),
        (error: unknown) => onDone(error ?? new Error('watch failed')),
      );
    });
    if (result instanceof Error) throw result;
    return result;
  }

  #apply(object: KubeObject): void {
    const key = keyOf(object);
    const previous = this.#cache.get(key);
    if (previous !== undefined && this.#injected.has(key)) {
      // Events up to the injected write are already in the cache; the watch catches up to it.
      const behind = notNewer(object.metadata.resourceVersion, previous.metadata.resourceVersion);
      const caughtUp = object.metadata.resourceVersion === previous.metadata.resourceVersion;
      if (behind !== true || caughtUp) this.#injected.delete(key);
      if (behind === true) return;
    }
    if (previous?.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.#cache.set(key, object);
    this.#options.onChange(key, object, previous);
  }

  #withKind(object: KubeObject): KubeObject {
    const kept = this.#options.keep?.(object) ?? object;
    return kept.kind === undefined ? { ...kept, kind: this.#options.kind } : kept;
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

/**
 * Whether resourceVersion `a` is not newer than `b`: etcd's revisions are integers, which
 * kube-apiserver passes through; undefined when either is not one (then nothing is assumed).
 */
function notNewer(a: string, b: string): boolean | undefined {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  return BigInt(a) <= BigInt(b);
}

/** client-node ends a quiet watch with a TimeoutError after 30 s: a normal end, not a failure. */
function isTimeout(error: unknown): boolean {
  return (
    (error as { name?: string } | null)?.name === 'TimeoutError' ||
    (error as { name?: string } | null)?.name === 'AbortError'
  );
}
