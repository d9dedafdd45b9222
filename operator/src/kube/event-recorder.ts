import type { Logger } from '@ccproxy/core';
import type { KubeClient, KubeObject } from './kube-client.ts';

export interface EventRecorderOptions {
  /** Normal Events of one namespace, kind and reason recorded one per object in a window. */
  burst?: number;
  windowMs?: number;
}

interface Batch {
  windowStart: number;
  sent: number;
  held: string[];
  count: number;
  last?: { kind: string; object: KubeObject; message: string };
  timer?: NodeJS.Timeout;
}

const shownNames = 20;

/**
 * Events as client-go's recorder keeps them affordable (its EventCorrelator combines similar
 * events): a Warning is always recorded on its own object — a human must see each problem. Normal
 * Events of one namespace, kind and reason ("KeyActive", "Reconciled") are recorded one per object
 * up to `burst` in a window; past that they are counted and recorded at the window's end as one
 * Event "(combined from similar events)" naming the objects, on the last of them. A handful of
 * keys still gets an Event each (what `kubectl describe` shows); 5,000 keys applied at once cost
 * a few dozen Events instead of 5,000 requests, and each object's Ready condition says the same.
 */
export class EventRecorder {
  readonly #client: Pick<KubeClient, 'createEvent'>;
  readonly #logger: Logger;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #batches = new Map<string, Batch>();

  constructor(client: Pick<KubeClient, 'createEvent'>, logger: Logger, options: EventRecorderOptions = {}) {
    this.#client = client;
    this.#logger = logger;
    this.#burst = options.burst ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
  }

  async record(kind: string, object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string) {
    if (type === 'Warning') return this.#send(kind, object, type, reason, message);
    const key = `${object.metadata.namespace}/${kind}/${reason}`;
    const now = Date.now();
    let batch = this.#batches.get(key);
    if (batch === undefined || (batch.count === 0 && now - batch.windowStart >= this.#windowMs)) {
      batch = { windowStart: now, sent: 0, held: [], count: 0 };
      this.#batches.set(key, batch);
    }
    if (batch.sent < this.#burst) {
      batch.sent += 1;
      return this.#send(kind, object, type, reason, message);
    }
    batch.count += 1;
    if (batch.held.length < shownNames) batch.held.push(object.metadata.name);
    batch.last = { kind, object, message };
    batch.timer ??= setTimeout(() => void this.#flush(key), Math.max(0, batch.windowStart + this.#windowMs - now));
    return undefined;
  }

  /** Records what is held (a term of leadership ends, the operator stops). */
  async stop(): Promise<void> {
    await Promise.all([...this.#batches.keys()].map((key) => this.#flush(key)));
  }

  async #flush(key: string): Promise<void> {
    const batch = this.#batches.get(key);
    if (batch === undefined) return;
    clearTimeout(batch.timer);
    this.#batches.delete(key);
    const { last, count, held } = batch;
    if (last === undefined || count === 0) return;
    const [, kind, reason = ''] = key.split('/');
    const more = count > held.length ? ` and ${count - held.length} more` : '';
    const message = `(combined from similar events): ${count} ${kind}s: ${held.join(', ')}${more}. Last: ${last.message}`;
    await this.#send(last.kind, last.object, 'Normal', reason, message);
  }

  async #send(kind: string, object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string) {
    await this.#client
      .createEvent({ kind, object }, type, reason, message, 'ccproxy-operator')
      .catch((error: unknown) => this.#logger.debug({ err: error }, 'event not recorded'));
  }
}
