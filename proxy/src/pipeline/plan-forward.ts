import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { toPlanRequest } from '../adapters/anthropic/request.ts';
import { ProxyError, type Usage } from '@ccproxy/core';
import type { Exchange } from './exchange.ts';
import { PlanRejected } from './failover.ts';
import type { RequestBody } from './request-body.ts';
import { relayPlanAnswer } from './plan-relay.ts';
import type { RelayOutcome } from './sse-relay.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

export interface PlanForwardOptions {
  dispatcher: Dispatcher;
  upstream: URL;
  planApiKey: string | undefined;
  /** When it returns true for the upstream status, the answer is held back as `PlanRejected` instead of relayed. */
  holdBack?: (status: number) => boolean;
}

/** Failover-worthy answers are error bodies; more than this is relayed rather than held. */
const maxHeldBody = 64 * 1024;

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

/**
 * Sends the request to the Anthropic API unchanged and relays the answer. Throws a
 * `ProxyError` when nothing has been sent to the client yet (so the caller can still answer,
 * or fail over); after that, failures end the response in place.
 */
export async function forwardToPlan(
  exchange: Exchange,
  upstreamPath: string,
  options: PlanForwardOptions,
): Promise<ForwardResult> {
  const { req, res, body } = exchange;
  // Only an answer that can still fail over needs the body again.
  const upstreamBody =
    body?.declaredLength === undefined
      ? await wholeBodyOf(body)
      : streamedBodyOf(body, body.declaredLength, options.holdBack !== undefined);
  const plan = toPlanRequest(
    joinPath(options.upstream, upstreamPath),
    req.rawHeaders,
    req.headers,
    upstreamBody.length,
    options.planApiKey,
  );
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.once('close', onClose);

  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await options.dispatcher.request({
      origin: options.upstream.origin,
      path: plan.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: plan.headers,
      body: upstreamBody.body,
      signal: controller.signal,
    });
  } catch (error) {
    res.off('close', onClose);
    // The client's own body failing (cut short) is its error, not the upstream's.
    throw error instanceof ProxyError ? error : fromUpstreamFailure(error);
  }

  if (options.holdBack?.(upstream.statusCode) === true) {
    res.off('close', onClose);
    throw new PlanRejected(upstream.statusCode, upstream.headers, await readLimited(upstream.body, maxHeldBody));
  }
  body?.release();
  const relayed = await relayPlanAnswer(upstream, exchange, controller.signal);
  res.off('close', onClose);
  return relayed;
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
async function wholeBodyOf(body: RequestBody | undefined): Promise<UpstreamBody> {
  const bytes = await body?.bytes();
  if (bytes === undefined || bytes.length === 0) return { body: null, length: 0 };
  return { body: bytes, length: bytes.length };
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Upstream base URLs may carry a path prefix (e.g. a corporate egress proxy); keep it. */
function joinPath(base: URL, path: string): string {
  const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  return `${prefix}${path}`;
}
