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

  constructor(status: number, headers: IncomingHttpHeaders, body: Buffer) {
    super(`Plan upstream answered ${status}`);
    this.name = 'PlanRejected';
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
}

/** Plan statuses that say "Anthropic cannot serve this now", not "this request is wrong". */
export function isFailoverStatus(status: number): boolean {
  return status === 429 || status >= 500;
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
