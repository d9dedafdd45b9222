import type { IncomingHttpHeaders } from 'node:http';

/**
 * Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus those the proxy must
 * recompute (`host`, `content-length`). Everything else, credentials and `anthropic-*`
 * included, goes upstream untouched.
 */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'http2-settings',
]);

export interface PlanRequest {
  readonly path: string;
  readonly headers: string[];
}

/**
 * Builds the Plan (Anthropic) request from the client's: path without the `/ak/<key>` prefix
 * (query kept), the client's raw headers minus hop-by-hop ones in their original order and
 * case, and the default Plan key only when the client sent no credential of its own.
 */
export function toPlanRequest(
  upstreamPath: string,
  rawHeaders: readonly string[],
  headers: IncomingHttpHeaders,
  bodyLength: number,
  planApiKey: string | undefined,
): PlanRequest {
  const connectionTokens = listedInConnection(headers.connection);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || (connectionTokens.size > 0 && connectionTokens.has(lower))) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  if (bodyLength > 0) out.push('content-length', String(bodyLength));
  if (planApiKey !== undefined && headers['x-api-key'] === undefined && headers.authorization === undefined) {
    out.push('x-api-key', planApiKey);
  }
  return { path: upstreamPath, headers: out };
}

const noTokens: ReadonlySet<string> = new Set();
/** The last `connection` value read and its extra tokens: a client sends the same one on every request. */
let lastConnection: { value: string; tokens: ReadonlySet<string> } = { value: '', tokens: noTokens };

/**
 * The header names `connection` lists beyond the hop-by-hop ones (usually none: `keep-alive`).
 * Parsed once per distinct value; this runs on every request.
 */
function listedInConnection(value: string | undefined): ReadonlySet<string> {
  if (value === undefined) return noTokens;
  if (value === lastConnection.value) return lastConnection.tokens;
  const extra = value
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== '' && !hopByHop.has(token));
  lastConnection = { value, tokens: extra.length === 0 ? noTokens : new Set(extra) };
  return lastConnection.tokens;
}
