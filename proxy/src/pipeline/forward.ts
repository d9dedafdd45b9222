import type { Dispatcher } from 'undici';
import { ProxyError } from '@ccproxy/core';
import type { Exchange } from './exchange.ts';
import { PlanRejected } from './failover.ts';
import type { Backend, ForwardResult } from './translator.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

/**
 * The one forward, for every backend: the backend's request is dispatched with abort-on-close
 * (a client that disconnects aborts the upstream request), a transport failure becomes one
 * `ProxyError` (the client's own body failing — cut short, too large — stays the client's
 * error), the response head is the backend's to judge, and the answer is the backend's to serve.
 * Throws a `ProxyError` (or `PlanRejected`) while nothing has been sent to the client, so the
 * caller can still answer or fail over; after that, failures end the response in place. A client
 * gone before the answer began is `PRX_CLIENT_CLOSED`, whatever the upstream call then did.
 */
export async function forward(exchange: Exchange, backend: Backend, dispatcher: Dispatcher): Promise<ForwardResult> {
  const { gone } = exchange;
  if (gone.aborted) throw clientClosed();
  // Awaited only when it is a promise: an `await` would let Node's HTTP parser finish the whole
  // socket read (the body's chunks, queued ticks) before the upstream request is even created.
  const made = backend.request();
  const request = made instanceof Promise ? await made : made;
  // Bedrock's credentials may have taken a while: a client gone meanwhile costs no upstream call.
  if (gone.aborted) throw clientClosed();
  let upstream: Dispatcher.ResponseData;
  try {
    // undici takes any signal with `addEventListener` (its types name only AbortSignal and EventEmitter).
    upstream = await dispatcher.request({ ...request, signal: gone as unknown as AbortSignal });
    // The head is the backend's to judge; reading a held-back error body can fail too.
    await backend.responseHead(upstream);
  } catch (error) {
    // Our own abort (the client left) is the client's doing: never an upstream failure, so no
    // failover and no breaker count (seen: three clients pressing Esc opened the breaker).
    if (gone.aborted) throw clientClosed(error);
    throw error instanceof ProxyError || error instanceof PlanRejected ? error : fromUpstreamFailure(error);
  }
  return backend.answer(upstream, gone);
}

/** The client went away before its answer began: recorded as such (499), never answered. */
export function clientClosed(cause?: unknown): ProxyError {
  return new ProxyError('PRX_CLIENT_CLOSED', undefined, cause === undefined ? undefined : { cause });
}
