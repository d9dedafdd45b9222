import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ProxyError, toAnthropicError } from '@ccproxy/core';
import { fromPlanResponseHeaders } from '../adapters/anthropic/response.ts';
import { DecodedUsage } from '../metering/decoded-usage.ts';
import { maxCheckedJsonBytes, PlanUsageObserver } from '../metering/plan-usage.ts';
import type { ClientSignal } from './client-gone.ts';
import type { Exchange } from './exchange.ts';
import type { ForwardResult } from './translator.ts';
import { relayBody, type RelayOutcome } from './sse-relay.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

/**
 * Relays a Plan answer and reads its usage on the side, by the completeness rule: a stream ends
 * with `message_stop` or an `event: error`; a non-streaming 2xx JSON answer is held until it is
 * whole and parses (the parse is the usage reader's own, done once), so a body cut short — with
 * or without `content-length` — becomes a 502 instead of a truncated 200. Compressed answers go
 * to the client as they are and a decoded copy feeds the observer; their bytes are opaque (no
 * event boundaries, no plain-text error event can be appended), so a compressed stream that
 * breaks or ends without `message_stop` is aborted.
 */
export async function relayPlanAnswer(
  upstream: Dispatcher.ResponseData,
  exchange: Exchange,
  signal: ClientSignal,
): Promise<ForwardResult> {
  const sse = String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
  const observer = new PlanUsageObserver();
  const encoding = upstream.headers['content-encoding'];
  const compressed = typeof encoding === 'string' && encoding !== 'identity';
  const decoded = compressed ? DecodedUsage.for(encoding, observer, sse) : undefined;
  const read = (outcome: ForwardResult['outcome']) =>
    compressed && decoded === undefined
      ? { outcome }
      : { outcome, usage: observer.usage, usageComplete: observer.complete, modelServed: observer.model };
  if (!sse && isHeldJson(upstream, exchange.req.method) && (!compressed || decoded !== undefined))
    return relayHeldJson(upstream, exchange, signal, observer, decoded, read);

  // An event stream the relay may end with its own `event: error` has no length of its own: a
  // `content-length` kept from upstream would cut that event off and leave bytes on the connection.
  const ttfbMs = writeHead(upstream, exchange, sse && !compressed);
  const relaying = relayBody(upstream.body, exchange.res, {
    sse: sse && !compressed,
    requestId: exchange.id,
    signal,
    ...(decoded === undefined
      ? compressed
        ? {}
        : { observer }
      : {
          tap: (chunk: Buffer) => decoded.write(chunk),
          // A compressed stream is whole when its decoded copy reached message_stop.
          ...(sse ? { verify: async () => (await decoded.end()) === true } : {}),
        }),
  });
  return settleRelay(exchange, upstream, relaying, ttfbMs, decoded, read);
}

/** A relay's end: a broken upstream body is destroyed, the decoded copy read to its end (or dropped: the client left). */
async function settleRelay(
  exchange: Exchange,
  upstream: Dispatcher.ResponseData,
  relaying: Promise<RelayOutcome>,
  ttfbMs: number,
  decoded: DecodedUsage | undefined,
  read: ReadUsage,
): Promise<ForwardResult> {
  const outcome = await relaying;
  if (outcome !== 'complete') upstream.body.destroy();
  if (outcome === 'client_closed') decoded?.stop();
  await decoded?.end();
  warnUnreadable(exchange, decoded);
  return { status: upstream.statusCode, ttfbMs, ...read(outcome) };
}

/** The one line saying a compressed answer's usage could not be read whole (it is metered with what was). */
function warnUnreadable(exchange: Exchange, decoded: DecodedUsage | undefined): void {
  if (decoded?.tooLarge === true)
    exchange.log.warn('usage unreadable: the decoded answer is over the cap; metered with what was read');
}

/** What the observer read, for an answer that ended with `outcome`. */
type ReadUsage = (outcome: ForwardResult['outcome']) => Omit<ForwardResult, 'status' | 'ttfbMs'>;

/** Non-streaming 2xx JSON answers with a body: the ones a client reads as a whole message. */
function isHeldJson(upstream: Dispatcher.ResponseData, method: string | undefined): boolean {
  const status = upstream.statusCode;
  if (status < 200 || status >= 300 || status === 204 || status === 205 || method === 'HEAD') return false;
  if (!String(upstream.headers['content-type'] ?? '').startsWith('application/json')) return false;
  const length = upstream.headers['content-length'];
  return length !== '0' && !(typeof length === 'string' && Number(length) > maxCheckedJsonBytes);
}

async function relayHeldJson(
  upstream: Dispatcher.ResponseData,
  exchange: Exchange,
  signal: ClientSignal,
  observer: PlanUsageObserver,
  decoded: DecodedUsage | undefined,
  read: ReadUsage,
): Promise<ForwardResult> {
  const held = await hold(upstream.body, (chunk) =>
    decoded === undefined ? observer.observeJsonChunk(chunk) : decoded.write(chunk),
  );
  if (held.failure !== undefined) {
    upstream.body.destroy();
    decoded?.stop();
    if (signal.aborted) return { status: upstream.statusCode, ttfbMs: exchange.elapsedMs, outcome: 'client_closed' };
    return broken(exchange, fromUpstreamFailure(held.failure), 'upstream_failed', read);
  }
  if (held.overflow) {
    // Larger than any message: relayed as it comes, unchecked (documented).
    const ttfbMs = writeHead(upstream, exchange);
    // The part already read was observed (or decoded); the rest goes through the relay's own metering.
    exchange.res.write(held.bytes);
    upstream.body.unshift(held.rest);
    const relaying = relayBody(upstream.body, exchange.res, {
      sse: false,
      requestId: exchange.id,
      signal,
      ...(decoded === undefined ? {} : { tap: (chunk: Buffer) => decoded.write(chunk) }),
    });
    upstream.body.resume(); // `hold` paused it; the relay's listeners are on now
    return settleRelay(exchange, upstream, relaying, ttfbMs, decoded, read);
  }
  const whole = decoded === undefined ? observer.finishJson() : await decoded.end();
  warnUnreadable(exchange, decoded);
  if (whole === false) return broken(exchange, truncatedBody(), 'upstream_truncated', read);
  const ttfbMs = exchange.elapsedMs;
  exchange.send(upstream.statusCode, fromPlanResponseHeaders(upstream.headers, exchange.id), held.bytes);
  return { status: upstream.statusCode, ttfbMs, ...read('complete') };
}

const truncatedBody = () =>
  new ProxyError('PRX_UPSTREAM_BROKEN', 'The upstream API answered with a body that is not complete JSON.');

/** The answer when a held body turned out broken: nothing was sent yet, so a proper 502 (or 504). */
function broken(
  exchange: Exchange,
  error: ProxyError,
  outcome: ForwardResult['outcome'],
  read: ReadUsage,
): ForwardResult {
  const { status, body } = toAnthropicError(error, exchange.id);
  exchange.log.warn({ code: error.code, err: error.cause }, 'upstream answer broken before it was sent');
  exchange.sendJson(status, body);
  return { status, ttfbMs: exchange.elapsedMs, ...read(outcome), usageComplete: false };
}

interface Held {
  bytes: Buffer;
  overflow: boolean;
  /** On overflow: the chunk that went over, not observed yet. */
  rest: Buffer;
  failure?: unknown;
}

/** Reads a body up to `maxCheckedJsonBytes`, by `data` events; past that it stops, paused. */
function hold(body: Readable, observe: (chunk: Buffer) => void): Promise<Held> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (held: Held) => {
      body.off('data', onData).off('end', onEnd).off('error', onError);
      resolve(held);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length <= maxCheckedJsonBytes) {
        size += chunk.length;
        chunks.push(chunk);
        return observe(chunk);
      }
      body.pause();
      done({ bytes: Buffer.concat(chunks, size), overflow: true, rest: chunk });
    };
    const none = Buffer.alloc(0);
    const onEnd = () => done({ bytes: Buffer.concat(chunks, size), overflow: false, rest: none });
    const onError = (failure: unknown) => done({ bytes: none, overflow: false, rest: none, failure });
    body.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

/** Writes the upstream's head (sent with the first body chunk); returns the time to first byte. */
function writeHead(upstream: Dispatcher.ResponseData, exchange: Exchange, unsized = false): number {
  const headers = fromPlanResponseHeaders(upstream.headers, exchange.id);
  if (unsized) delete headers['content-length'];
  // Not flushed on its own: Node sends the head with the first body chunk, one packet instead
  // of two (a separate small head write costs a round of Nagle/delayed-ACK on the client side).
  exchange.res.writeHead(upstream.statusCode, headers);
  return exchange.elapsedMs;
}
