import { Counter, Histogram, type Registry } from 'prom-client';

export type RouteLabel = 'messages' | 'count_tokens' | 'other';
export type UpstreamLabel = 'plan' | 'bedrock' | 'none';

/** Every proxy metric, on the registry passed in. Labels come from small fixed sets only. */
export function createProxyMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'ccproxy_requests_total',
      help: 'Requests answered, by route, upstream and status class.',
      labelNames: ['route', 'upstream', 'status_class'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'ccproxy_request_duration_seconds',
      help: 'Time from request received to response finished.',
      labelNames: ['route', 'upstream', 'status_class'] as const,
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    ttfb: new Histogram({
      name: 'ccproxy_time_to_first_byte_seconds',
      help: 'Time from request received to the upstream response headers being sent to the client.',
      labelNames: ['route', 'upstream'] as const,
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    failovers: new Counter({
      name: 'ccproxy_failovers_total',
      help: 'Requests the Plan upstream could not serve that went to Bedrock, by why.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'ccproxy_errors_total',
      help: 'Error answers (made by the proxy or relayed), by Anthropic error type and upstream.',
      labelNames: ['type', 'upstream'] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'ccproxy_tokens_total',
      help: 'Tokens the upstreams reported, by provider and type.',
      labelNames: ['provider', 'type'] as const,
      registers: [registry],
    }),
    streamErrors: new Counter({
      name: 'ccproxy_stream_errors_total',
      help: 'Responses that broke after the status line was sent, by how they ended.',
      labelNames: ['upstream', 'outcome'] as const,
      registers: [registry],
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;

const messagesPath = '/v1/messages';
const countTokensPath = '/v1/messages/count_tokens';

/** The route's label, from the path before any query string (compared in place: this runs on every request). */
export function routeLabel(upstreamPath: string): RouteLabel {
  const query = upstreamPath.indexOf('?');
  const length = query === -1 ? upstreamPath.length : query;
  if (length === messagesPath.length && upstreamPath.startsWith(messagesPath)) return 'messages';
  if (length === countTokensPath.length && upstreamPath.startsWith(countTokensPath)) return 'count_tokens';
  return 'other';
}

export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
