import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { toAnthropicErrorEvent } from '@ccproxy/core';
import type { PlanUsageObserver } from '../metering/plan-usage.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

export type RelayOutcome = 'complete' | 'client_closed' | 'upstream_failed';

/** Past this much data without an event boundary, forward anyway rather than hold it. */
const maxHeldBytes = 1024 * 1024;

export interface RelayOptions {
  sse: boolean;
  requestId: string;
  signal: AbortSignal;
  /** Reads usage from what was sent (plain bodies). */
  observer?: PlanUsageObserver;
  /** Gets a copy of every byte sent, as sent (compressed bodies, decoded elsewhere). */
  tap?: (chunk: Buffer) => void;
}

/**
 * Relays upstream body bytes to the client unchanged, with backpressure. For SSE it forwards
 * only whole events (up to the last blank line seen) and holds a trailing partial event until
 * its end arrives, so that when the upstream breaks mid-stream the client never holds half an
 * event: it gets an Anthropic `event: error` and a cleanly ended stream. Non-SSE bodies that
 * break are aborted (the socket is destroyed) so a truncated JSON body cannot pass as complete.
 */
export function relayBody(body: Readable, res: ServerResponse, options: RelayOptions): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const observer = options.observer;
    let held: Buffer | undefined;
    let settled = false;
    const settle = (outcome: RelayOutcome) => {
      settled = true;
      // The error listener stays: an aborted upstream body errors after the relay has settled.
      body.off('data', onData).off('end', onEnd);
      res.off('drain', onDrain);
      options.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
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
      }
      const flushed = res.write(out);
      // Metering reads a copy of what was sent, after sending it.
      options.tap?.(out);
      if (options.sse) observer?.observeEvents(out);
      else observer?.observeJsonChunk(out);
      if (!flushed) {
        body.pause();
        res.once('drain', onDrain);
      }
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      res.end(held);
      if (held !== undefined) {
        options.tap?.(held);
        observer?.observeEvents(held);
      }
      if (!options.sse) observer?.finishJson();
      settle('complete');
    };
    const onError = (error: Error) => {
      if (settled) return;
      if (options.signal.aborted || res.destroyed) return settle('client_closed');
      if (options.sse) res.end(toAnthropicErrorEvent(fromUpstreamFailure(error), options.requestId));
      else res.destroy();
      settle('upstream_failed');
    };
    const onAbort = () => settle('client_closed');
    if (options.signal.aborted) return settle('client_closed');
    options.signal.addEventListener('abort', onAbort, { once: true });
    body.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

const lf = 0x0a;
const cr = 0x0d;

/**
 * Index just past the last blank line (`\n\n` or `\r\n\r\n`), 0 when there is none. Runs once
 * per chunk, and an upstream that writes whole events ends nearly every chunk on one: the
 * trailing bytes answer that without a search through the chunk.
 */
function eventBoundary(buffer: Buffer): number {
  const end = buffer.length;
  if (
    buffer[end - 1] === lf &&
    (buffer[end - 2] === lf || (buffer[end - 2] === cr && buffer[end - 3] === lf && buffer[end - 4] === cr))
  )
    return end;
  const lfAt = buffer.lastIndexOf(lfPair);
  // CRLF framing is rare (no Anthropic endpoint uses it): search for it only when a CR is there.
  const crlfAt = buffer.includes(cr) ? buffer.lastIndexOf(crlfPair) : -1;
  return Math.max(lfAt === -1 ? 0 : lfAt + 2, crlfAt === -1 ? 0 : crlfAt + 4);
}

const lfPair = Buffer.from('\n\n');
const crlfPair = Buffer.from('\r\n\r\n');
