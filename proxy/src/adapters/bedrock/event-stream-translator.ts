import { ProxyError, toAnthropicErrorEvent } from '@ccproxy/core';
import { fromBedrockFailure } from './errors.ts';
import { EventStreamFrames, type EventFrame } from './event-stream-frames.ts';

/**
 * What every Bedrock event-stream translator (ConverseStream, InvokeModelWithResponseStream)
 * shares: frames in, SSE text out; an exception frame or a malformed frame ends the stream with
 * an Anthropic `error` event; and the completeness flags the relay reads. A subclass translates
 * the `event` frames and says when its stream is whole (`end`), failed on its own (`endFailed`)
 * or cut short (`truncate`). Per request; not thread-safe.
 */
export abstract class EventStreamTranslator {
  protected readonly frames = new EventStreamFrames();
  readonly #requestId: string;
  #ended = false;
  #failed = false;
  #truncated = false;
  #failure: ProxyError | undefined;

  constructor(requestId: string) {
    this.#requestId = requestId;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Ended with an `error` event rather than `message_stop`. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Failed because the upstream ended cleanly before the stream was whole. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Why the stream ended with an `error` event (undefined while it has not). */
  get failure(): ProxyError | undefined {
    return this.#failure;
  }

  /** Feeds upstream bytes; returns the SSE text to send (possibly empty). */
  push(chunk: Uint8Array): string {
    if (this.#ended) return '';
    let out = '';
    try {
      for (const frame of this.frames.push(chunk)) {
        out += this.#onFrame(frame);
        if (this.#ended) break;
      }
      // A bad frame after good ones in the same chunk: the good ones went out above, the error now
      // (not with the next chunk, which a stalled upstream might never send).
      if (!this.#ended && this.frames.error !== undefined) throw this.frames.error;
    } catch (error) {
      out += this.fail(error instanceof ProxyError ? error : malformed(error));
    }
    return out;
  }

  /** Ends the stream with an Anthropic `error` event. */
  fail(error: ProxyError): string {
    if (this.#ended) return '';
    this.endFailed(error);
    return toAnthropicErrorEvent(error, this.#requestId);
  }

  /** Translates one `event` frame (exception frames never get here). */
  protected abstract onEvent(frame: EventFrame): string;

  /** The stream is whole: `message_stop` went out. */
  protected end(): void {
    this.#ended = true;
  }

  /** The stream ended with an error event already written (the model's own `error` event). */
  protected endFailed(failure: ProxyError): void {
    this.#ended = true;
    this.#failed = true;
    this.#failure = failure;
  }

  /** The upstream ended before the stream was whole: an `error` event, counted as truncated. */
  protected truncate(message: string): string {
    this.#truncated = true;
    return this.fail(new ProxyError('PRX_UPSTREAM_BROKEN', message));
  }

  #onFrame(frame: EventFrame): string {
    if (frame.messageType === 'event') return this.onEvent(frame);
    const payload = frame.payload as { message?: string; originalStatusCode?: number };
    return this.fail(
      fromBedrockFailure({
        name: frame.name,
        message: payload.message,
        originalStatusCode: payload.originalStatusCode,
      }),
    );
  }
}

/** A frame or event that is not what the format says: the upstream's failure (502). */
export function malformed(cause: unknown): ProxyError {
  return new ProxyError('PRX_UPSTREAM_BROKEN', 'Bedrock sent a malformed event stream.', { cause });
}
