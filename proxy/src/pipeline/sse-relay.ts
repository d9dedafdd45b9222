import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError } from '@ccproxy/core';
import type { PlanUsageObserver } from '../metering/plan-usage.ts';
import type { ClientSignal } from './client-gone.ts';
import { PassthroughOpaque, PassthroughSse } from './passthrough-stream.ts';
import type { StreamTranslator } from './translator.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

/**
 * How a relayed answer ended: whole, the client gone, the upstream failing (an error or a reset),
 * or the upstream ending cleanly but short (a stream without `message_stop`, a body that does
 * not verify).
 */
export type RelayOutcome = 'complete' | 'client_closed' | 'upstream_failed' | 'upstream_truncated';

export interface RelayOptions {
  sse: boolean;
  requestId: string;
  signal: ClientSignal;
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

/** Relays a Plan body unchanged through the one relay (see `PassthroughSse` / `PassthroughOpaque`). */
export function relayBody(body: Readable, res: ServerResponse, options: RelayOptions): Promise<RelayOutcome> {
  const translator = options.sse ? new PassthroughSse(options) : new PassthroughOpaque(options);
  return relay(body, res, translator, { signal: options.signal });
}

export interface RelayControl {
  signal: ClientSignal;
  /**
   * Writes the response head; given, it is deferred to the first bytes out, and a stream that
   * fails before any (its first output is the translator's failure) rejects with that failure
   * instead, so the caller answers with a status and Anthropic's JSON error, not a 200.
   */
  head?: () => void;
}

/**
 * The one relay, for every backend: upstream bytes through the backend's `StreamTranslator` to
 * the client, with backpressure; the translator ends the stream by the completeness rule (its
 * `finish` on a clean end, `fail` on an error), and an `undefined` ending aborts the connection.
 * Driven by `data` events, as `pipe` is: no promise per chunk. At one core's limit with thousands
 * of streams, `for await` cost ~7 % more CPU per event (docs/performance.md).
 */
export function relay(
  body: Readable,
  res: ServerResponse,
  translator: StreamTranslator,
  control: RelayControl,
): Promise<RelayOutcome> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let head = control.head;
    const settle = (outcome: RelayOutcome | ProxyError) => {
      settled = true;
      // The error listener stays: an aborted upstream body errors after the relay has settled.
      body.off('data', onData).off('end', onEnd);
      res.off('drain', onDrain);
      control.signal.removeEventListener('abort', onAbort);
      if (outcome instanceof ProxyError) {
        body.destroy();
        return reject(outcome);
      }
      // A client gone aborts the upstream request through the signal (undici destroys the body).
      if ((outcome !== 'complete' && outcome !== 'client_closed') || translator.ended) body.destroy();
      resolve(outcome);
    };
    /** A failure and nothing before it, with the head still unsent: answered with a status instead. */
    const failsBeforeHead = (out: string | Buffer) =>
      head !== undefined && translator.failed && typeof out === 'string' && out.startsWith('event: error\n');
    const writeHead = () => {
      head?.();
      head = undefined;
    };
    const ended = (): RelayOutcome =>
      translator.truncated ? 'upstream_truncated' : translator.failed ? 'upstream_failed' : 'complete';
    const end = (out: string | Buffer | undefined) => {
      if (settled) return;
      if (out === undefined) {
        res.destroy();
        return settle(translator.failed ? 'upstream_failed' : 'upstream_truncated');
      }
      if (failsBeforeHead(out)) return settle(translator.failure ?? brokenStream());
      writeHead();
      res.end(out);
      settle(ended());
    };
    const onData = (chunk: Buffer) => {
      const out = translator.push(chunk);
      if (translator.ended) return end(out);
      if (out.length === 0) return;
      writeHead();
      const flushed = res.write(out);
      translator.sent?.(out);
      if (!flushed) {
        body.pause();
        res.once('drain', onDrain);
      }
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      const last = translator.finish();
      if (last instanceof Promise) void last.then(end, (error: unknown) => end(translator.fail(broken(error))));
      else end(last);
    };
    const onError = (error: Error) => {
      if (settled) return;
      if (control.signal.aborted || res.destroyed) return settle('client_closed');
      end(translator.fail(fromUpstreamFailure(error)));
    };
    const onAbort = () => settle('client_closed');
    if (control.signal.aborted) return settle('client_closed');
    control.signal.addEventListener('abort', onAbort, { once: true });
    body.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

const brokenStream = () => new ProxyError('PRX_UPSTREAM_BROKEN', 'The upstream sent a malformed stream.');
const broken = (error: unknown) => (error instanceof ProxyError ? error : fromUpstreamFailure(error));
