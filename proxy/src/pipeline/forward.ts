import type { Dispatcher } from 'undici';
import { ProxyError } from '@ccproxy/core';
import { ClientGone } from './client-gone.ts';
import type { Exchange } from './exchange.ts';
import type { Backend, ForwardResult } from './translator.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

/**
 * The one forward, for every backend: the backend's request is dispatched with abort-on-close
 * (a client that disconnects aborts the upstream request), a transport failure becomes one
 * `ProxyError` (the client's own body failing — cut short, too large — stays the client's
 * error), the response head is the backend's to judge, and the answer is the backend's to serve.
 * Throws a `ProxyError` (or `PlanRejected`) while nothing has been sent to the client, so the
 * caller can still answer or fail over; after that, failures end the response in place.
 */
export async function forward(exchange: Exchange, backend: Backend, dispatcher: Dispatcher): Promise<ForwardResult> {
  // Awaited only when it is a promise: an `await` would let Node's HTTP parser finish the whole
  // socket read (the body's chunks, queued ticks) before the upstream request is even created.
  const made = backend.request();
  const request = made instanceof Promise ? await made : made;
  const { res } = exchange;
  const gone = new ClientGone();
  const onClose = () => {
    if (!res.writableFinished) gone.abort();
  };
  res.once('close', onClose);
  try {
    let upstream: Dispatcher.ResponseData;
    try {
      // undici takes any signal with `addEventListener` (its types name only AbortSignal and EventEmitter).
      upstream = await dispatcher.request({ ...request, signal: gone as unknown as AbortSignal });
    } catch (error) {
      throw error instanceof ProxyError ? error : fromUpstreamFailure(error);
    }
    await backend.responseHead(upstream);
    return await backend.answer(upstream, gone);
  } finally {
    res.off('close', onClose);
  }
}
