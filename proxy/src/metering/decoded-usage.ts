import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib';
import { eventBoundary } from '../pipeline/sse-framing.ts';
import type { PlanUsageObserver } from './plan-usage.ts';

const decoders: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: createZstdDecompress,
};

/**
 * Feeds a compressed Plan answer to the usage observer: the client gets the compressed bytes
 * untouched, and a copy is decoded beside the relay so its usage can still be read, and whether
 * it was whole (a JSON body that parses, a stream that reached `message_stop`). SSE output is
 * re-cut at event boundaries, since decoded chunks do not align.
 */
export class DecodedUsage {
  readonly #decoder: Transform;
  readonly #done: Promise<void>;
  #pending: Buffer = Buffer.alloc(0);
  #whole: boolean | undefined;

  private constructor(decoder: Transform, observer: PlanUsageObserver, sse: boolean) {
    this.#decoder = decoder;
    decoder.on('data', (chunk: Buffer) => {
      if (!sse) return observer.observeJsonChunk(chunk);
      const joined = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      const cut = eventBoundary(joined);
      if (cut > 0) observer.observeEvents(joined.subarray(0, cut));
      this.#pending = joined.subarray(cut);
    });
    this.#done = new Promise((resolve) => {
      decoder.on('end', () => {
        this.#whole = sse ? observer.stopped : observer.finishJson();
        resolve();
      });
      // A corrupt or cut-off body means no usage, and not a whole answer; the client's copy is unaffected.
      decoder.on('error', () => {
        this.#whole = false;
        resolve();
      });
    });
  }

  /** undefined for encodings it cannot decode (the answer then goes unmetered). */
  static for(encoding: string, observer: PlanUsageObserver, sse: boolean): DecodedUsage | undefined {
    const make = decoders[encoding.trim().toLowerCase()];
    return make === undefined ? undefined : new DecodedUsage(make(), observer, sse);
  }

  write(chunk: Buffer): void {
    this.#decoder.write(chunk);
  }

  /**
   * Ends the input and waits until everything decoded has been observed. Resolves to whether
   * the decoded answer was whole (undefined: a JSON body too large to check).
   */
  async end(): Promise<boolean | undefined> {
    if (!this.#decoder.writableEnded) this.#decoder.end();
    await this.#done;
    return this.#whole;
  }
}
