import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib';
import { EventCutter } from '../pipeline/sse-framing.ts';
import { maxCheckedJsonBytes, type PlanUsageObserver } from './plan-usage.ts';

const decoders: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: createZstdDecompress,
};

/**
 * Most decoded bytes of one compressed stream read for usage; past it the rest is not decoded.
 * The longest real streams (128k output tokens, one ~130-byte delta event per token) decode to
 * about 17 MB; gzip expands up to ~1000×, so 100 KB on the wire decode to 100 MB. Decoding and
 * reading a 64 MiB gzip bomb costs 0.3–0.4 s of CPU, gunzip included (a shared 2-core machine;
 * gunzip alone ~4.5 ms per MiB), whatever its size on the wire.
 */
export const maxDecodedStreamBytes = 4 * maxCheckedJsonBytes;

/**
 * Feeds a compressed Plan answer to the usage observer: the client gets the compressed bytes
 * untouched, and a copy is decoded beside the relay so its usage can still be read, and whether
 * it was whole (a JSON body that parses, a stream that reached `message_stop`). SSE output is
 * re-cut at event boundaries, since decoded chunks do not align (a partial event is held up to
 * `maxPendingEventBytes`, as the plain relay holds one). Decoding stops once the decoded copy
 * is larger than any answer that is read: 16 MiB of JSON (`maxCheckedJsonBytes`, as for a
 * plain body), `maxDecodedStreamBytes` of a stream. The answer is then judged, and metered, by
 * what was read before: a JSON body too large to check, a stream whole only if its
 * `message_stop` was among it.
 */
export class DecodedUsage {
  readonly #decoder: Transform;
  readonly #observer: PlanUsageObserver;
  readonly #events: EventCutter | undefined;
  readonly #limit: number;
  readonly #done: Promise<void>;
  #settle: () => void = () => undefined;
  #decodedBytes = 0;
  #settled = false;
  #whole: boolean | undefined;
  #tooLarge = false;

  private constructor(decoder: Transform, observer: PlanUsageObserver, sse: boolean) {
    this.#decoder = decoder;
    this.#observer = observer;
    this.#events = sse ? new EventCutter() : undefined;
    this.#limit = sse ? maxDecodedStreamBytes : maxCheckedJsonBytes;
    this.#done = new Promise((resolve) => (this.#settle = resolve));
    decoder.on('data', (chunk: Buffer) => this.#read(chunk));
    decoder.once('end', () => this.#finish(sse ? observer.stopped : observer.finishJson()));
    // A corrupt or cut-off body means no usage, and not a whole answer; the client's copy is unaffected.
    decoder.on('error', () => this.#finish(false));
  }

  /** undefined for encodings it cannot decode (the answer then goes unmetered). */
  static for(encoding: string, observer: PlanUsageObserver, sse: boolean): DecodedUsage | undefined {
    const make = decoders[encoding.trim().toLowerCase()];
    return make === undefined ? undefined : new DecodedUsage(make(), observer, sse);
  }

  /** Whether decoding stopped at the cap: the usage past it was not read (for the request's log line). */
  get tooLarge(): boolean {
    return this.#tooLarge;
  }

  write(chunk: Buffer): void {
    if (!this.#settled) this.#decoder.write(chunk);
  }

  /**
   * Ends the input and waits until everything decoded has been observed. Resolves to whether
   * the decoded answer was whole (undefined: a JSON body too large to check).
   */
  async end(): Promise<boolean | undefined> {
    if (!this.#settled && !this.#decoder.writableEnded) this.#decoder.end();
    await this.#done;
    return this.#whole;
  }

  /**
   * The client left: what was decoded so far is what is known (it is metered as not whole), and
   * the rest is not decoded (a compressed answer can be many times its size on the wire).
   */
  stop(): void {
    this.#finish(false);
    this.#decoder.destroy();
  }

  #read(chunk: Buffer): void {
    if (this.#settled) return;
    this.#decodedBytes += chunk.length;
    if (this.#decodedBytes > this.#limit) return this.#stop();
    const events = this.#events;
    if (events === undefined) return this.#observer.observeJsonChunk(chunk);
    const whole = events.push(chunk);
    if (whole.length > 0) this.#observer.observeEvents(whole);
  }

  /** Past the cap: the decoder is dropped with whatever it still had to do. */
  #stop(): void {
    this.#tooLarge = true;
    this.#finish(this.#events === undefined ? undefined : this.#observer.stopped);
    this.#decoder.destroy();
  }

  #finish(whole: boolean | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#whole = whole;
    this.#settle();
  }
}
