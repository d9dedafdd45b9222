import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { toPlanRequest } from '../../adapters/anthropic/request.ts';
import type { ClientSignal } from '../client-gone.ts';
import type { Exchange } from '../exchange.ts';
import { PlanRejected } from '../failover.ts';
import { forward } from '../forward.ts';
import { relayPlanAnswer } from '../plan-relay.ts';
import type { RequestBody } from '../request-body.ts';
import type { Backend, ForwardResult, UpstreamRequest } from '../translator.ts';

export interface PlanForwardOptions {
  dispatcher: Dispatcher;
  upstream: URL;
  planApiKey: string | undefined;
  /** When it returns true for the upstream status, the answer is held back as `PlanRejected` instead of relayed. */
  holdBack?: (status: number) => boolean;
}

/** Failover-worthy answers are error bodies: this much is kept to relay if Bedrock cannot serve either. */
const maxHeldBody = 64 * 1024;
/**
 * How long the held body may take. The status alone decides the failover; the body is only
 * relayed if Bedrock fails too, so a body that stalls must not hold the client (seen: a 429 head
 * then nothing held it for the 5-minute body timeout, then answered 500).
 */
const maxHeldBodyMs = 5_000;

/** Sends the request to the Anthropic API unchanged and relays the answer (see `forward`). */
export function forwardToPlan(
  exchange: Exchange,
  upstreamPath: string,
  options: PlanForwardOptions,
): Promise<ForwardResult> {
  return forward(exchange, new PlanPassthrough(exchange, upstreamPath, options), options.dispatcher);
}

/** The passthrough backend: method, path, headers and body bytes unchanged; the answer relayed as it is. */
class PlanPassthrough implements Backend {
  readonly #exchange: Exchange;
  readonly #upstreamPath: string;
  readonly #options: PlanForwardOptions;

  constructor(exchange: Exchange, upstreamPath: string, options: PlanForwardOptions) {
    this.#exchange = exchange;
    this.#upstreamPath = upstreamPath;
    this.#options = options;
  }

  /** Synchronous for a body of declared length (streamed) and for none; a chunked one is read first. */
  request(): UpstreamRequest | Promise<UpstreamRequest> {
    const { body } = this.#exchange;
    if (body === undefined) return this.#request({ body: null, length: 0 });
    if (body.declaredLength === undefined) return wholeBodyOf(body).then((whole) => this.#request(whole));
    // Only an answer that can still fail over needs the body again.
    return this.#request(streamedBodyOf(body, body.declaredLength, this.#options.holdBack !== undefined));
  }

  #request(upstreamBody: UpstreamBody): UpstreamRequest {
    const { req } = this.#exchange;
    const options = this.#options;
    const plan = toPlanRequest(
      joinPath(options.upstream, this.#upstreamPath),
      req.rawHeaders,
      req.headers,
      upstreamBody.length,
      options.planApiKey,
    );
    return {
      origin: options.upstream.origin,
      path: plan.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: plan.headers,
      body: upstreamBody.body,
    };
  }

  async responseHead(upstream: Dispatcher.ResponseData): Promise<void> {
    if (this.#options.holdBack?.(upstream.statusCode) === true) {
      const held = await readHeld(upstream.body);
      throw new PlanRejected(upstream.statusCode, upstream.headers, held.body, held.complete);
    }
  }

  answer(upstream: Dispatcher.ResponseData, signal: ClientSignal): Promise<ForwardResult> {
    this.#exchange.body?.release();
    return relayPlanAnswer(upstream, this.#exchange, signal);
  }
}

interface UpstreamBody {
  body: Readable | Buffer | null;
  length: number;
}

/** A body of declared length streams upstream as it arrives. */
function streamedBodyOf(body: RequestBody, length: number, keepCopy: boolean): UpstreamBody {
  if (length === 0) return { body: null, length: 0 };
  return { body: body.stream(keepCopy), length };
}

/**
 * A chunked body is read whole first, so one over the limit gets its 413 before anything
 * reaches the upstream, and the upstream gets a `content-length`.
 */
async function wholeBodyOf(body: RequestBody): Promise<UpstreamBody> {
  const bytes = await body.bytes();
  if (bytes.length === 0) return { body: null, length: 0 };
  return { body: bytes, length: bytes.length };
}

/**
 * A held-back error body, up to `maxHeldBody` bytes and `maxHeldBodyMs`: whole, or what came
 * before the limit, the deadline or a break (`complete: false`; the rest is discarded). Never
 * throws: the status has already decided.
 */
async function readHeld(body: Dispatcher.ResponseData['body']): Promise<{ body: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let late = false;
  const deadline = setTimeout(() => {
    late = true;
    body.destroy();
  }, maxHeldBodyMs);
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxHeldBody) {
        body.destroy();
        return { body: Buffer.concat(chunks), complete: false };
      }
      chunks.push(chunk);
    }
    return { body: Buffer.concat(chunks), complete: !late };
  } catch {
    return { body: Buffer.concat(chunks), complete: false };
  } finally {
    clearTimeout(deadline);
  }
}

/** Each upstream base URL's path prefix, read once (a URL's `pathname` is a new string per read). */
const prefixes = new WeakMap<URL, string>();

/** Upstream base URLs may carry a path prefix (e.g. a corporate egress proxy); keep it. */
function joinPath(base: URL, path: string): string {
  let prefix = prefixes.get(base);
  if (prefix === undefined) {
    prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
    prefixes.set(base, prefix);
  }
  return prefix === '' ? path : `${prefix}${path}`;
}
