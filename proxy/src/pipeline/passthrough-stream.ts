import { toAnthropicErrorEvent, type ProxyError } from '@ccproxy/core';
import { PlanUsageObserver } from '../metering/plan-usage.ts';
import { EventCutter } from './sse-framing.ts';
import { truncatedStream, type RelayOptions } from './sse-relay.ts';
import type { StreamTranslator } from './translator.ts';

/**
 * The passthrough translator for SSE: bytes go out unchanged, but only whole events (up to the
 * last blank line seen, LF, CR or CRLF framed); a trailing partial event is held until its end
 * arrives (up to `maxPendingEventBytes`; past that it goes as it is, see `EventCutter`). The
 * completeness rule: the stream ends with the upstream's `message_stop` or with an Anthropic
 * `event: error`; a partial event at the end is dropped, since no client could dispatch it.
 * Usage and `message_stop` are read from what was sent, after sending it.
 */
export class PassthroughSse implements StreamTranslator {
  readonly #observer: PlanUsageObserver;
  readonly #requestId: string;
  readonly #tap: ((chunk: Buffer) => void) | undefined;
  readonly #events = new EventCutter();
  failed = false;
  truncated = false;
  failure: ProxyError | undefined;
  readonly ended = false;

  constructor(options: Pick<RelayOptions, 'observer' | 'requestId' | 'tap'>) {
    this.#observer = options.observer ?? new PlanUsageObserver();
    this.#requestId = options.requestId;
    this.#tap = options.tap;
  }

  push(chunk: Buffer): Buffer {
    return this.#events.push(chunk);
  }

  sent(out: Buffer): void {
    this.#tap?.(out);
    this.#observer.observeEvents(out);
  }

  finish(): Buffer | string {
    return this.#end(undefined);
  }

  fail(error: ProxyError): Buffer | string {
    return this.#end(error);
  }

  #end(failure: ProxyError | undefined): Buffer | string {
    // What follows message_stop, if anything, goes as it came.
    if (this.#observer.stopped) return this.#events.held ?? '';
    this.failed = true;
    this.truncated = failure === undefined;
    this.failure = failure ?? truncatedStream();
    const event = toAnthropicErrorEvent(this.failure, this.#requestId);
    return this.#events.atBoundary ? event : `\n\n${event}`;
  }
}

/**
 * The passthrough translator for opaque (non-SSE) bodies: bytes go out as they come; one that
 * breaks, or fails `verify` at its clean end, cannot carry an error event, so the relay aborts
 * the connection instead of ending it.
 */
export class PassthroughOpaque implements StreamTranslator {
  readonly #options: Pick<RelayOptions, 'observer' | 'tap' | 'verify'>;
  failed = false;
  truncated = false;
  failure: ProxyError | undefined;
  readonly ended = false;

  constructor(options: Pick<RelayOptions, 'observer' | 'tap' | 'verify'>) {
    this.#options = options;
  }

  push(chunk: Buffer): Buffer {
    return chunk;
  }

  sent(out: Buffer): void {
    this.#options.tap?.(out);
    this.#options.observer?.observeJsonChunk(out);
  }

  async finish(): Promise<string | undefined> {
    this.#options.observer?.finishJson();
    if (this.#options.verify === undefined || (await this.#options.verify())) return '';
    this.truncated = true;
    return undefined;
  }

  fail(error: ProxyError): undefined {
    this.failed = true;
    this.failure = error;
    return undefined;
  }
}
