import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib';
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
 * untouched, and a copy is decoded beside the relay (off the response path) so its usage can
 * still be read. SSE output is re-cut at event boundaries, since decoded chunks do not align.
 */
export class DecodedUsage {
  readonly #decoder: Transform;
  readonly #done: Promise<void>;
  #pending: Buffer = Buffer.alloc(0);

  private constructor(decoder: Transform, observer: PlanUsageObserver, sse: boolean) {
    this.#decoder = decoder;
    decoder.on('data', (chunk: Buffer) => {
      if (!sse) return observer.observeJsonChunk(chunk);
      const joined = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      const cut = joined.lastIndexOf('\n\n');
      if (cut === -1) {
        this.#pending = joined;
        return;
      }
      observer.observeEvents(joined.subarray(0, cut + 2));
      this.#pending = joined.subarray(cut + 2);
    });
    this.#done = new Promise((resolve) => {
      decoder.on('end', () => {
        if (!sse) observer.finishJson();
        resolve();
      });
      // A corrupt or cut-off body only means no usage; the client's copy is unaffected.
      decoder.on('error', () => resolve());
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

  /** Ends the input and waits until everything decoded has been observed. */
  async end(): Promise<void> {
    this.#decoder.end();
    await this.#done;
  }
}
