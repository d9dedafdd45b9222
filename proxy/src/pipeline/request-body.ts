import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { ProxyError } from '@ccproxy/core';

type State = 'idle' | 'reading' | 'ended' | 'failed';

/**
 * A client's request body, read once and used twice. The Plan path streams it upstream as it
 * arrives, so the upstream request starts with the first chunk instead of after the last
 * (buffering a 30 KB Claude Code request first cost ~100 µs at c=1). A copy is kept until the
 * Plan answer is relayed, because failing over to Bedrock needs the whole body parsed; then it
 * is dropped, so a long stream does not pin its request for its whole life.
 */
export class RequestBody {
  /** The declared `content-length`; undefined for a chunked body. */
  readonly declaredLength: number | undefined;
  readonly #source: IncomingMessage;
  readonly #limit: number;
  #state: State = 'idle';
  #chunks: Buffer[] = [];
  #size = 0;
  #keep = true;
  #error: ProxyError | undefined;
  #live: Readable | undefined;
  #waiters: Array<() => void> = [];

  constructor(source: IncomingMessage, declaredLength: number | undefined, limit: number) {
    this.#source = source;
    this.declaredLength = declaredLength;
    this.#limit = limit;
  }

  /**
   * The body as a stream for one upstream request. Its chunks are the client's, pushed as they
   * arrive, with the client paused while the upstream socket is full. Without `keepCopy`
   * (nothing can fail over) no copy is kept and `bytes()` is not available.
   */
  stream(keepCopy = true): Readable {
    // A body already given up on (the client went silent while the key was checked) fails here.
    if (this.#state === 'failed' && this.#error !== undefined) throw this.#error;
    // One upstream attempt streams, and before anything has been read; later ones use `bytes()`.
    if (this.#state !== 'idle') throw new Error('the request body can only be streamed before it is read');
    this.#keep = keepCopy;
    const live = new Readable({ read: () => this.#source.resume() });
    // Its errors are reported by the upstream call or by `bytes()`; one arriving after the
    // upstream let go of the stream must not become an uncaught exception.
    live.on('error', ignore);
    // undici's stream writer leaves its 'error' listener on a body that ended (it takes it off
    // only on 'close', after it already stopped listening for that): the listener holds the
    // writer and the request head, ~1.7 KiB a stream for the whole answer. Once the body has
    // ended and undici has finished writing it, that listener does nothing; drop it.
    live.once('end', () => queueMicrotask(() => live.removeAllListeners('error').on('error', ignore)));
    this.#live = live;
    // An upstream that fails drops (or destroys) its body; the copy must still be read to the end.
    live.once('close', () => {
      if (this.#live !== live) return;
      this.#live = undefined;
      if (this.#state === 'reading') this.#source.resume();
    });
    this.#start();
    return live;
  }

  /**
   * The whole body, once the client has sent it. For the Bedrock paths, which come after any
   * Plan attempt is over: a stream still open for that attempt is cut loose.
   */
  async bytes(): Promise<Buffer> {
    if (!this.#keep)
      throw new Error(
        'the request body was not kept (streamed without a copy, or released once the Plan answer was relayed)',
      );
    this.#live?.destroy();
    this.#live = undefined;
    this.#start();
    this.#source.resume();
    if (this.#state === 'reading') await new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.#error !== undefined) throw this.#error;
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#size)];
    return this.#chunks[0] as Buffer;
  }

  /**
   * Gives up on a body the client stopped sending: a stream being fed is destroyed with `error`
   * (the upstream request fails with it), a `bytes()` waiting rejects with it, and a body not
   * read yet fails with it when it is.
   */
  abort(error: ProxyError): void {
    if (this.#state === 'ended' || this.#state === 'failed') return;
    this.#start();
    this.#fail(error);
  }

  /** The answer is committed: no failover can need the copy any more. */
  release(): void {
    this.#keep = false;
    this.#chunks = [];
  }

  #start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'reading';
    const source = this.#source;
    source.on('data', this.#onData);
    source.once('end', this.#onEnd);
    source.on('error', this.#onAborted);
    source.once('close', this.#onAborted);
  }

  #onData = (chunk: Buffer): void => {
    this.#size += chunk.length;
    // Only a chunked body can get here over the limit: a declared length over it is refused up front.
    if (this.#size > this.#limit) {
      this.#fail(bodyTooLarge(this.#limit));
      return;
    }
    if (this.#keep) this.#chunks.push(chunk);
    if (this.#live !== undefined && !this.#live.push(chunk)) this.#source.pause();
  };

  #onEnd = (): void => {
    if (this.#state !== 'reading') return;
    this.#state = 'ended';
    this.#live?.push(null);
    this.#settle();
  };

  #onAborted = (error?: Error): void => {
    if (this.#state !== 'reading' || this.#source.complete) return;
    this.#fail(
      new ProxyError('PRX_INVALID_REQUEST', 'The request body ended before its declared length.', { cause: error }),
    );
  };

  #fail(error: ProxyError): void {
    this.#state = 'failed';
    this.#error = error;
    this.#chunks = [];
    // What is left of the body is read and dropped, so the answer can be sent and the connection kept.
    this.#source.off('data', this.#onData);
    this.#source.resume();
    this.#live?.destroy(error);
    this.#settle();
  }

  #settle(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

const ignore = (): void => undefined;

/** The 413 for a body over the limit, whether its declared length or its bytes say so. */
export function bodyTooLarge(limit: number): ProxyError {
  return new ProxyError('PRX_BODY_TOO_LARGE', `Request body exceeds ${limit} bytes.`);
}
