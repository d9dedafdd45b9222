import type { Dispatcher } from 'undici';
import type { ProxyError, Usage } from '@ccproxy/core';
import type { ClientSignal } from './client-gone.ts';
import type { Exchange } from './exchange.ts';
import type { RelayOutcome } from './sse-relay.ts';

/**
 * The one translator seam (the shape of Envoy AI Gateway's `internal/translator/`: one
 * translator per schema pair behind one interface). A backend — Plan passthrough, Bedrock
 * Converse, Bedrock InvokeModel — is one `Backend`; `forward` (forward.ts) drives every one of
 * them the same way: build the request, dispatch it with abort-on-close, map transport
 * failures, check the response head, then answer, streams through the one relay (sse-relay.ts)
 * with the backend's `StreamTranslator`.
 */
export interface Backend {
  /**
   * The upstream request for this exchange (may read and translate the client's body). A
   * backend that needs nothing to arrive first returns it as is, not in a promise: `forward`
   * then dispatches in the same turn as the client's request event (see forward.ts).
   */
  request(): UpstreamRequest | Promise<UpstreamRequest>;
  /**
   * The upstream's response head, before a byte reaches the client: throws what the answer
   * means when it is a failure (a Plan status held back for failover, a Bedrock exception).
   */
  responseHead(upstream: Dispatcher.ResponseData): Promise<void>;
  /** Serves the (successful) answer: a whole body, or a stream through the one relay. */
  answer(upstream: Dispatcher.ResponseData, signal: ClientSignal): Promise<ForwardResult>;
}

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: Dispatcher.HttpMethod;
  headers: Dispatcher.DispatchOptions['headers'];
  body: Dispatcher.DispatchOptions['body'];
}

/**
 * A stream's translation, chunk by chunk, for the one relay: upstream bytes in, client bytes
 * out. The completeness rule lives here: `finish` and `fail` end the stream with the upstream's
 * `message_stop` or with an Anthropic `event: error` (or, for opaque bodies that cannot carry
 * one, `undefined`: the relay then aborts the connection so a cut body cannot pass as whole).
 */
export interface StreamTranslator {
  /** Upstream bytes → what to send now (possibly empty). */
  push(chunk: Buffer): string | Buffer;
  /** Told what was written, after it was written (metering reads a copy after sending). */
  sent?(out: string | Buffer): void;
  /** The upstream ended cleanly: the last bytes, or `undefined` when the answer was not whole. */
  finish(): string | Buffer | undefined | Promise<string | Buffer | undefined>;
  /** The upstream broke: the closing error event, or `undefined` when the body cannot carry one. */
  fail(error: ProxyError): string | Buffer | undefined;
  /** The stream ended (`message_stop` or an error) before the upstream did: stop reading. */
  readonly ended: boolean;
  /** Ended with an error (event) rather than `message_stop`. */
  readonly failed: boolean;
  /** Ended because the upstream stopped short (clean end without `message_stop`). */
  readonly truncated: boolean;
  /** Why the stream failed (undefined while it has not). */
  readonly failure: ProxyError | undefined;
}

export interface ForwardResult {
  status: number;
  outcome: RelayOutcome;
  /** ms from request start to the response head being written. */
  ttfbMs: number;
  /** Tokens the upstream reported (absent when the answer could not be read, e.g. compressed). */
  usage?: Usage;
  /** Whether the final usage was seen (false: the answer ended early; `usage` is what was seen). */
  usageComplete?: boolean;
  modelServed?: string | null;
  modelRequested?: string;
}

/** What a backend is built from: the exchange it serves and its path after `/ak/<key>`. */
export interface BackendInput {
  exchange: Exchange;
  upstreamPath: string;
}
