import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError } from '@ccproxy/core';

/**
 * An answer from the Plan upstream that is worth failing over on (429, 5xx, 529), held back
 * unsent. If Bedrock cannot serve either, this answer is relayed after all, so the client sees
 * Anthropic's own error (with its `retry-after`).
 */
export class PlanRejected extends Error {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Whether `body` is the whole answer (not cut at the hold's limit, nor broken off or stalled). */
  readonly complete: boolean;

  constructor(status: number, headers: IncomingHttpHeaders, body: Buffer, complete = true) {
    super(`Plan upstream answered ${status}`);
    this.name = 'PlanRejected';
    this.status = status;
    this.headers = headers;
    this.body = body;
    this.complete = complete;
  }
}

/** Plan statuses that say "Anthropic cannot serve this now", not "this request is wrong". */
export function isFailoverStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * How long the Plan upstream asked us to wait, in ms: `retry-after-ms`, else `retry-after` as
 * seconds or an HTTP date (RFC 9110 §10.2.3). Undefined when absent or unreadable.
 */
export function retryAfterMs(headers: IncomingHttpHeaders, now: number): number | undefined {
  const ms = headers['retry-after-ms'];
  if (typeof ms === 'string' && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers['retry-after'];
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const failoverCodes = new Set(['PRX_UPSTREAM_UNREACHABLE', 'PRX_UPSTREAM_TIMEOUT', 'PRX_UPSTREAM_BROKEN']);

/**
 * The failover decision, pure: only for failures that mean the Plan upstream is unavailable,
 * and only while nothing has reached the client (after the first byte, a switch would corrupt
 * the response).
 */
export function shouldFailOver(failure: unknown, bytesSentToClient: number): boolean {
  if (bytesSentToClient > 0) return false;
  if (failure instanceof PlanRejected) return isFailoverStatus(failure.status);
  return failure instanceof ProxyError && failoverCodes.has(failure.code);
}
