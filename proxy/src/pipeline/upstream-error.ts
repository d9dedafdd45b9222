import { ProxyError } from '@ccproxy/core';

/**
 * undici failures → our error model, by error code (never by message text). Connect and
 * header timeouts are 504s; refused, reset and unresolvable upstreams are 502s.
 */
export function fromUpstreamFailure(error: unknown): ProxyError {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return new ProxyError('PRX_UPSTREAM_TIMEOUT', undefined, { cause: error });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new ProxyError('PRX_UPSTREAM_UNREACHABLE', undefined, { cause: error });
    default:
      return new ProxyError('PRX_UPSTREAM_BROKEN', undefined, { cause: error });
  }
}
