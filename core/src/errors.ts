/**
 * One error model for the whole product. Every failure the proxy reports is a `ProxyError`
 * with a stable `code`; the wire shape (Anthropic's `{"type":"error",...}`) is produced once,
 * by `toAnthropicErrorBody`, so handlers never hand-craft error JSON.
 */

/** Anthropic's error `type` values (https://docs.claude.com/en/api/errors). */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'billing_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

interface ErrorSpec {
  readonly type: AnthropicErrorType;
  readonly status: number;
  readonly message: string;
}

/** The table of every error the proxy itself can raise, keyed by stable code. */
export const errorCodes = {
  PRX_KEY_NOT_FOUND: { type: 'not_found_error', status: 404, message: 'Unknown or revoked access key.' },
  PRX_ROUTE_NOT_FOUND: { type: 'not_found_error', status: 404, message: 'Not found.' },
  PRX_BODY_TOO_LARGE: {
    type: 'request_too_large',
    status: 413,
    message: 'Request body is larger than the proxy accepts.',
  },
  PRX_INVALID_JSON: { type: 'invalid_request_error', status: 400, message: 'Request body is not valid JSON.' },
  PRX_INVALID_REQUEST: { type: 'invalid_request_error', status: 400, message: 'Invalid request.' },
  PRX_UPSTREAM_UNREACHABLE: { type: 'api_error', status: 502, message: 'The upstream API could not be reached.' },
  PRX_UPSTREAM_TIMEOUT: { type: 'timeout_error', status: 504, message: 'The upstream API did not answer in time.' },
  PRX_UPSTREAM_BROKEN: { type: 'api_error', status: 502, message: 'The upstream API broke off the response.' },
  PRX_BEDROCK_INVALID_REQUEST: { type: 'invalid_request_error', status: 400, message: 'Bedrock rejected the request.' },
  PRX_BEDROCK_NOT_FOUND: { type: 'not_found_error', status: 404, message: 'Bedrock does not know the model.' },
  PRX_BEDROCK_RATE_LIMITED: { type: 'rate_limit_error', status: 429, message: 'Bedrock is rate limiting.' },
  PRX_BEDROCK_OVERLOADED: { type: 'overloaded_error', status: 529, message: 'Bedrock is overloaded.' },
  PRX_BEDROCK_TIMEOUT: { type: 'timeout_error', status: 504, message: 'Bedrock timed out.' },
  PRX_BEDROCK_ERROR: { type: 'api_error', status: 500, message: 'Bedrock failed.' },
  // Never 401/403: Claude Code would blame (and refresh) its own credential.
  PRX_BEDROCK_MISCONFIGURED: {
    type: 'api_error',
    status: 500,
    message: 'The proxy could not use its Bedrock credentials or model; an administrator must fix its configuration.',
  },
  // KMS (the key-encryption key of Bedrock API keys) is unreachable, timing out or throttling,
  // and this replica holds no decrypted copy of the key's Bedrock credential: a transient outage
  // (503, retried by Claude Code), not the administrator's configuration (that is MISCONFIGURED).
  PRX_BEDROCK_KEY_UNAVAILABLE: {
    type: 'overloaded_error',
    status: 503,
    message: "The proxy cannot decrypt this key's Bedrock credential right now: KMS is unreachable. Try again shortly.",
  },
  PRX_UNAVAILABLE: { type: 'overloaded_error', status: 503, message: 'The proxy is not ready to serve requests.' },
  PRX_INTERNAL: { type: 'api_error', status: 500, message: 'Internal proxy error.' },
  // The client went away before its answer began (nginx's 499): nobody hears it; the request
  // log and metrics record it, and it is never an upstream failure (no failover, no breaker count).
  PRX_CLIENT_CLOSED: {
    type: 'invalid_request_error',
    status: 499,
    message: 'The client closed the connection before the answer began.',
  },
  // The client stopped sending its request (headers or body) for longer than the idle limit. A
  // client's failure, hence invalid_request_error, not timeout_error (Anthropic's 504 for its own
  // slowness); the SDKs retry 408 by status either way.
  PRX_REQUEST_TIMEOUT: {
    type: 'invalid_request_error',
    status: 408,
    message: 'The request was not received in time: the client stopped sending it.',
  },
  // A budget (key, user or team; day or month) is spent. 402 billing_error, with `x-should-retry:
  // false`: Claude Code retries 429 and 5xx (up to ten times, with back-off) and 401 after a
  // credential refresh, but neither a 402 nor any answer saying `x-should-retry: false`, so the
  // developer sees the message (which budget, when it resets) at once instead of a minute of retries.
  // Not 403: permission_error reads as a credential problem.
  PRX_BUDGET_EXHAUSTED: { type: 'billing_error', status: 402, message: 'A budget is spent.' },
  // A rate limit of the key or user (requests, input or output tokens per minute, concurrent
  // streams; or their Bedrock-failover limits). 429 with retry-after: Claude Code waits and retries.
  PRX_RATE_LIMITED: { type: 'rate_limit_error', status: 429, message: 'A rate limit of this key or user is reached.' },
  // Budgets are on and this replica cannot read spend from Postgres for a budget it has never read:
  // refused rather than served unmetered (a budget is a promise not to overspend).
  PRX_BUDGET_UNAVAILABLE: {
    type: 'overloaded_error',
    status: 503,
    message: 'The proxy cannot check the budget right now; try again shortly.',
  },
  PRX_HEADERS_TOO_LARGE: {
    type: 'request_too_large',
    status: 431,
    message: 'Request headers are larger than the proxy accepts.',
  },
  // The admin facade's errors (admin/src/errors.ts): JSON `{ statusCode, error, message, problems? }`,
  // where `error` is the code without `ADM_`, lower-cased (`ADM_BAD_REQUEST` → `bad_request`).
  ADM_BAD_REQUEST: { type: 'invalid_request_error', status: 400, message: 'Invalid request.' },
  ADM_UNAUTHORIZED: { type: 'authentication_error', status: 401, message: 'Log in first.' },
  ADM_FORBIDDEN: { type: 'permission_error', status: 403, message: 'Your role may not do this.' },
  ADM_SELF_SERVICE_LIMIT: {
    type: 'permission_error',
    status: 403,
    message: 'A self-service limit set by your team admin refuses this.',
  },
  ADM_NOT_FOUND: { type: 'not_found_error', status: 404, message: 'Not found.' },
  ADM_METHOD_NOT_ALLOWED: { type: 'invalid_request_error', status: 405, message: 'Method not allowed.' },
  // The client stopped sending its request; as PRX_REQUEST_TIMEOUT, the client's failure.
  ADM_REQUEST_TIMEOUT: {
    type: 'invalid_request_error',
    status: 408,
    message: 'The request was not received in time: the client stopped sending it.',
  },
  ADM_CONFLICT: { type: 'invalid_request_error', status: 409, message: 'Conflict.' },
  ADM_PAYLOAD_TOO_LARGE: { type: 'request_too_large', status: 413, message: 'Request body too large.' },
  ADM_URI_TOO_LONG: { type: 'invalid_request_error', status: 414, message: 'A path segment is too long.' },
  ADM_UNSUPPORTED_MEDIA_TYPE: { type: 'invalid_request_error', status: 415, message: 'Send application/json.' },
  ADM_TOO_MANY_REQUESTS: { type: 'rate_limit_error', status: 429, message: 'Too many requests.' },
  ADM_HEADERS_TOO_LARGE: {
    type: 'request_too_large',
    status: 431,
    message: 'Request headers are larger than the admin accepts (16 KiB).',
  },
  ADM_UNAVAILABLE: { type: 'overloaded_error', status: 503, message: 'The resource store is unavailable.' },
  ADM_INTERNAL: { type: 'api_error', status: 500, message: 'Internal error; see the admin log.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCodes;
/** The admin facade's part of the table. */
export type AdminErrorCode = Extract<ErrorCode, `ADM_${string}`>;

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly type: AnthropicErrorType;
  readonly status: number;
  /** Headers the answer carries (retry-after, anthropic-ratelimit-*, x-should-retry). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; headers?: Readonly<Record<string, string>> },
  ) {
    const spec: ErrorSpec = errorCodes[code];
    super(message ?? spec.message, options);
    this.name = 'ProxyError';
    this.code = code;
    this.type = spec.type;
    this.status = spec.status;
    this.headers = options?.headers;
  }
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
  request_id: string;
}

/**
 * Maps anything thrown to the Anthropic error body. Never throws; errors that are not
 * `ProxyError`s are hidden behind a generic message so internals never reach a client.
 */
export function toAnthropicError(error: unknown, requestId: string): { status: number; body: AnthropicErrorBody } {
  const known = error instanceof ProxyError ? error : new ProxyError('PRX_INTERNAL');
  return {
    status: known.status,
    body: { type: 'error', error: { type: known.type, message: known.message }, request_id: requestId },
  };
}

/** The SSE frame that ends a stream which broke after bytes were already sent. */
export function toAnthropicErrorEvent(error: unknown, requestId: string): string {
  const { body } = toAnthropicError(error, requestId);
  return `event: error\ndata: ${JSON.stringify(body)}\n\n`;
}

/** The Anthropic error type an HTTP status stands for (to classify relayed upstream errors). */
export function anthropicTypeForStatus(status: number): AnthropicErrorType {
  const byStatus: Record<number, AnthropicErrorType> = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    402: 'billing_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    504: 'timeout_error',
    529: 'overloaded_error',
  };
  return byStatus[status] ?? (status >= 400 && status < 500 ? 'invalid_request_error' : 'api_error');
}
