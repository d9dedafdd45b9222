import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError, toAnthropicErrorEvent } from '@ccproxy/core';
import { PlanUsageObserver } from '../metering/plan-usage.ts';
import { eventBoundary } from './sse-framing.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

/**
 * How a relayed answer ended: whole, the client gone, the upstream failing (an error or a reset),
 * or the upstream ending cleanly but short (a stream without `message_stop`, a body that does
 * not verify).
 */
export type RelayOutcome = 'complete' | 'client_closed' | 'upstream_failed' | 'upstream_truncated';

/** Past this much data without an event boundary, forward anyway rather than hold it. */
const maxHeldBytes = 1024 * 1024;

export interface RelayOptions {
  sse: boolean;
  requestId: string;
  signal: AbortSignal;
  /** Reads usage, and `message_stop`, from what was sent (plain bodies; SSE makes its own when absent). */
  observer?: PlanUsageObserver;
  /** Gets a copy of every byte sent, as sent (compressed bodies, decoded elsewhere). */
  tap?: (chunk: Buffer) => void;
  /**
   * Opaque (non-SSE) bodies: asked at the upstream's clean end whether the body was whole
   * (e.g. a decoded copy reached `message_stop`); false aborts the connection instead of ending it.
   */
  verify?: () => Promise<boolean>;
}

/** The one stream-completeness rule's error: a stream that ended without `message_stop`. */
export const truncatedStream = () =>
  new ProxyError('PRX_UPSTREAM_BROKEN', 'The upstream API ended the stream before message_stop.');

/**
 * Relays upstream body bytes to the client unchanged, with backpressure. For SSE it forwards
 * only whole events (up to the last blank line seen, LF, CR or CRLF framed) and holds a
 * trailing partial event until its end arrives. The completeness rule: an SSE stream ends with
 * the upstream's `message_stop` or with an Anthropic `event: error` — whether the upstream broke
 * (reset, timeout) or ended cleanly without it (cut short, or garbled so that no parseable
 * `message_stop` came); a partial event at the end is dropped, since no client could dispatch it.
 * Opaque bodies that break, or fail `verify`, are aborted (the socket is destroyed) so a
 * truncated body cannot pass as complete.
 */
export function relayBody(body: Readable, res: ServerResponse, options: RelayOptions): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const observer = options.observer ?? (options.sse ? new PlanUsageObserver() : undefined);
    let held: Buffer | undefined;
    // Whether the bytes sent so far end at an event boundary (false only after an oversized event).
    let atBoundary = true;
    let settled = false;
    const settle = (outcome: RelayOutcome) => {
      settled = true;
      // The error listener stays: an aborted upstream body errors after the relay has settled.
      body.off('data', onData).off('end', onEnd);
      res.off('drain', onDrain);
      options.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const send = (out: Buffer) => {
      const flushed = res.write(out);
      // Metering reads a copy of what was sent, after sending it.
      options.tap?.(out);
      if (options.sse) observer?.observeEvents(out);
      else observer?.observeJsonChunk(out);
      return flushed;
    };
    /** Ends an SSE stream by the completeness rule. */
    const endEvents = (failure: ProxyError | undefined): RelayOutcome => {
      if (observer?.stopped === true) {
        res.end(held); // what follows message_stop, if anything, goes as it came
        return 'complete';
      }
      const event = toAnthropicErrorEvent(failure ?? truncatedStream(), options.requestId);
      res.end(atBoundary ? event : `\n\n${event}`);
      return failure === undefined ? 'upstream_truncated' : 'upstream_failed';
    };
    // Driven by `data` events, as `pipe` is: no promise per chunk. At one core's limit with
    // thousands of streams, `for await` cost ~7 % more CPU per event (docs/performance.md).
    const onData = (chunk: Buffer) => {
      let out = chunk;
      if (options.sse) {
        const joined = held === undefined ? chunk : Buffer.concat([held, chunk]);
        const cut = eventBoundary(joined);
        if (cut < joined.length && joined.length - cut < maxHeldBytes) {
          held = joined.subarray(cut);
          out = joined.subarray(0, cut);
        } else {
          held = undefined;
          out = joined;
        }
        if (out.length === 0) return;
        atBoundary = cut === out.length;
      }
      if (!send(out)) {
        body.pause();
        res.once('drain', onDrain);
      }
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      if (options.sse) return settle(endEvents(undefined));
      void finishOpaque();
    };
    const finishOpaque = async () => {
      observer?.finishJson();
      if (options.verify === undefined || (await options.verify())) {
        res.end();
        return settle('complete');
      }
      res.destroy();
      settle('upstream_truncated');
    };
    const onError = (error: Error) => {
      if (settled) return;
      if (options.signal.aborted || res.destroyed) return settle('client_closed');
      if (options.sse) return settle(endEvents(fromUpstreamFailure(error)));
      res.destroy();
      settle('upstream_failed');
    };
    const onAbort = () => settle('client_closed');
    if (options.signal.aborted) return settle('client_closed');
    options.signal.addEventListener('abort', onAbort, { once: true });
    body.on('data', onData).once('end', onEnd).once('error', onError);
  });
}
