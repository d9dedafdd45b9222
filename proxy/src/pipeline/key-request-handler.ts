import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  anthropicTypeForStatus,
  ProxyError,
  redactKeyInUrl,
  toAnthropicError,
  type AnthropicErrorType,
  type KeyRecord,
  type Logger,
} from '@ccproxy/core';
import type { Governor, GovernanceTicket } from '../governance/governor.ts';
import type { CloudWatchEmf } from '../metering/cloudwatch-emf.ts';
import { failureRecordOf, sanitizeUsage, usageRecordOf } from '../metering/usage-record.ts';
import type { UsageRecorder } from '../metering/usage-recorder.ts';
import type { SpendMeter } from '../metering/spend-meter.ts';
import { routeLabel, statusClass, type ProxyMetrics } from '../metrics.ts';
import { Exchange } from './exchange.ts';
import type { KeyResolver } from './key-resolver.ts';
import { splitKeyPath } from './key-path.ts';
import { bodyTooLarge, RequestBody } from './request-body.ts';
import { serve, type ServeDeps, type Served } from './serve.ts';

export interface KeyRequestDeps {
  logger: Logger;
  keys: KeyResolver;
  metrics: ProxyMetrics;
  serve: ServeDeps;
  maxBodyBytes: number;
  /** Longest silence allowed between request body chunks (CCPROXY_REQUEST_BODY_IDLE_TIMEOUT_MS). */
  bodyIdleTimeoutMs: number;
  /** Whether Plan usage is stored too (Bedrock usage always is). */
  meterPlan: boolean;
  usage: UsageRecorder | undefined;
  /** `ccproxy_spend_usd_total` / `ccproxy_unpriced_requests_total`, from each usage record. */
  spend?: SpendMeter | undefined;
  cloudWatch: CloudWatchEmf | undefined;
  /** Budgets and rate limits; absent: none are enforced. */
  governor?: Governor | undefined;
  /** True once the server is shutting down: new requests get a 503, in-flight ones run to their end. */
  closing: () => boolean;
}

const bodylessMethods = new Set(['GET', 'HEAD']);
/** Longer than any access key: refused without hashing it. */
const maxKeyLength = 512;

/**
 * Serves every `/ak/<key>/…` request, straight from Node's `request` event. fastify still owns
 * the server and every other route; this path skips its router, hooks and per-request objects,
 * which cost 150–220 µs per request on a CPU whose caches went cold while Claude Code waited
 * on its previous stream (measured: docs/performance.md). Pipeline: auth → route → adapter →
 * meter; every failure is one Anthropic-shaped answer (`fail`).
 */
export function createKeyRequestHandler(deps: KeyRequestDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const infoEnabled = deps.logger.isLevelEnabled('info');
  return (req, res) => {
    handle(req, res, deps, infoEnabled).catch((error: unknown) => {
      // Not reached by design (`handle` answers its own failures); never an unhandled rejection.
      deps.logger.error({ err: error, url: redactKeyInUrl(req.url ?? '') }, 'request handler failed');
      res.destroy();
    });
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  deps: KeyRequestDeps,
  infoEnabled: boolean,
): Promise<void> {
  // The path's shape is checked before the key is looked at, for every request: a bad path
  // answers the same whether or not the key exists, after the same (no) work.
  const keyPath = splitKeyPath(req.url ?? '/ak/');
  const upstreamPath = keyPath?.upstreamPath ?? '/';
  const route = routeLabel(upstreamPath);
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  const body = bodylessMethods.has(req.method ?? '') ? undefined : new RequestBody(req, declared, deps.maxBodyBytes);
  const exchange = new Exchange(req, res, body, deps.logger);
  // Only while a body is still to come (a `content-length: 0` request may not be `complete` yet).
  if (declared === undefined ? req.headers['transfer-encoding'] !== undefined : declared > 0)
    watchBodyIdle(exchange, body, deps.bodyIdleTimeoutMs);
  let record: KeyRecord | undefined;
  let served: Served;
  let ticket: GovernanceTicket | undefined;
  try {
    if (deps.closing()) {
      res.setHeader('connection', 'close');
      throw new ProxyError('PRX_UNAVAILABLE', 'This proxy replica is shutting down; retry the request.');
    }
    // A declared length over the limit is refused before a byte is read, and before the key is checked.
    if (keyPath === undefined) throw new ProxyError('PRX_ROUTE_NOT_FOUND');
    if (declared !== undefined && declared > deps.maxBodyBytes) throw bodyTooLarge(deps.maxBodyBytes);
    const key = keyOf(keyPath.rawKey);
    record = deps.keys.remembered(key, req.socket) ?? (await authenticate(deps.keys, key, req.socket));
    exchange.bind({ keyPrefix: record.keyPrefix, user: `${record.namespace}/${record.userName}` });
    // Nothing is awaited on the common path up to the upstream call (remembered key, governor
    // answering synchronously, no breaker to read): the upstream request is created within the
    // client's request event, before Node's parser goes on with the body and queued ticks.
    const admitted = admit(deps.governor, exchange, record, upstreamPath);
    ticket = admitted instanceof Promise ? await admitted : admitted;
    served = await serve(exchange, upstreamPath, record, deps.serve, gateOf(deps.governor, ticket));
  } catch (error) {
    if (ticket !== undefined) void deps.governor?.settle(ticket, exchange.id, undefined, false);
    observeFailure(deps, exchange, route, error);
    fail(exchange, error);
    // The request log has the failures of known keys too (one row per request, by its id);
    // an unknown key has no one to attribute it to (metrics and the log line count it).
    if (record !== undefined && (exchange.upstream !== 'plan' || deps.meterPlan))
      deps.usage?.record(failureRecordOf(exchange, record, error));
    return;
  }
  const insane = sanitizeUsage(served.result.usage);
  if (insane.length > 0)
    exchange.log.warn({ fields: insane }, 'upstream reported impossible token counts; stored as bounded');
  const usage = usageRecordOf(exchange.id, record, served, exchange.elapsedMs);
  const stored = deps.usage !== undefined && (served.upstream === 'bedrock' || deps.meterPlan);
  if (stored) deps.usage?.record(usage);
  // Metrics after the record, and guarded: a failing observer must cost neither the record nor the settle.
  try {
    meter(deps.metrics, exchange, route, served, infoEnabled);
    // Priced once, where the record is made (after the answer ended), for /metrics and CloudWatch.
    const spendUsd = deps.spend?.observe(usage);
    deps.cloudWatch?.observe(cloudWatchView(served, exchange.elapsedMs, spendUsd));
  } catch (error) {
    exchange.log.error({ err: error }, 'request metrics could not be recorded');
  }
  if (ticket !== undefined) await deps.governor?.settle(ticket, exchange.id, usage, stored);
}

/**
 * Budgets and rate limits, after the key and before the upstream. Nothing is awaited when the
 * governor answers synchronously (no limits, or every budget cached below its soft limit and
 * every rate lease lasting): no promise, no Postgres round trip on the common path. A soft-limit
 * warning goes out as `x-ccproxy-budget-warning` on whatever answer follows (writeHead merges it).
 */
function admit(
  governor: Governor | undefined,
  exchange: Exchange,
  record: KeyRecord,
  upstreamPath: string,
): GovernanceTicket | undefined | Promise<GovernanceTicket | undefined> {
  if (governor === undefined) return undefined;
  const admitted = governor.admit(record, upstreamPath);
  return admitted instanceof Promise ? admitted.then((ticket) => warned(exchange, ticket)) : warned(exchange, admitted);
}

function warned(exchange: Exchange, ticket: GovernanceTicket | undefined): GovernanceTicket | undefined {
  const warning = ticket?.budget?.warning;
  if (warning !== undefined) exchange.res.setHeader('x-ccproxy-budget-warning', warning);
  return ticket;
}

function gateOf(governor: Governor | undefined, ticket: GovernanceTicket | undefined) {
  return governor === undefined || ticket === undefined ? undefined : () => governor.beforeBedrock(ticket);
}

async function authenticate(keys: KeyResolver, key: string, connection: object): Promise<KeyRecord> {
  let record;
  try {
    record = await keys.resolve(key, connection);
  } catch (error) {
    throw new ProxyError('PRX_UNAVAILABLE', 'Access keys cannot be checked right now; try again shortly.', {
      cause: error,
    });
  }
  if (record === undefined) throw new ProxyError('PRX_KEY_NOT_FOUND');
  return record;
}

/** The key, percent-decoded; one that cannot be a key is an unknown key. */
function keyOf(raw: string): string {
  if (raw === '' || raw.length > maxKeyLength) throw new ProxyError('PRX_KEY_NOT_FOUND');
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ProxyError('PRX_KEY_NOT_FOUND');
  }
}

/**
 * A client that stops sending its body is cut off after `idleMs` of silence (the socket's idle
 * timer, re-armed by every chunk; Node emits its 'timeout' on the request only while the request
 * is incomplete). Before an answer: a 408 with `connection: close` (the pipeline answers it,
 * through the body's failure). After one (a 404 for a bad key, say, while Node drains the
 * rest): the socket is destroyed. The timer is disarmed once the body has ended, so a long wait
 * for the upstream's answer is never cut.
 */
function watchBodyIdle(exchange: Exchange, body: RequestBody | undefined, idleMs: number): void {
  const { req, res } = exchange;
  if (req.complete) return;
  req.setTimeout(idleMs, () => {
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    res.setHeader('connection', 'close');
    body?.abort(new ProxyError('PRX_REQUEST_TIMEOUT', `No request body bytes arrived for ${idleMs} ms.`));
  });
  // Once answered, Node has put its keep-alive timer on the socket: that one stays.
  req.once('end', () => {
    if (!res.writableFinished) req.socket?.setTimeout(0);
  });
}

/** The client's one answer for a failure: Anthropic's error shape, or, once bytes were sent, an end. */
function fail(exchange: Exchange, error: unknown): void {
  const { status, body } = toAnthropicError(error, exchange.id);
  logRequestFailure(exchange.log, error, status, exchange.req.url ?? '');
  // The client left (PRX_CLIENT_CLOSED): there is nobody to answer.
  if (exchange.res.destroyed) return;
  if (!exchange.res.headersSent) {
    // A body still to come is not waited for: Node would otherwise keep the connection open
    // for whatever the client sends next (or does not send).
    if (!exchange.req.complete) exchange.res.setHeader('connection', 'close');
    if (error instanceof ProxyError && error.headers !== undefined)
      for (const [name, value] of Object.entries(error.headers)) exchange.res.setHeader(name, value);
    exchange.sendJson(status, body);
  } else if (!exchange.res.writableEnded) exchange.res.destroy();
}

/**
 * The one "request failed" line, for the pipeline and fastify's routes alike: a warning for 5xx
 * (with the error), info for a client's mistake; the key never whole in the URL.
 */
export function logRequestFailure(log: Logger, error: unknown, status: number, url: string): void {
  const code = error instanceof ProxyError ? error.code : 'PRX_INTERNAL';
  log[status >= 500 ? 'warn' : 'info'](
    { status, code, url: redactKeyInUrl(url), err: status >= 500 ? error : undefined },
    'request failed',
  );
}

function meter(metrics: ProxyMetrics, exchange: Exchange, route: string, served: Served, infoEnabled: boolean): void {
  const { result, upstream, failover } = served;
  const latencyMs = exchange.elapsedMs;
  const labels = { route, upstream, status_class: statusClass(result.status) };
  metrics.requests.inc(labels);
  metrics.duration.observe(labels, latencyMs / 1000);
  metrics.ttfb.observe({ route, upstream }, result.ttfbMs / 1000);
  if (result.outcome !== 'complete') metrics.streamErrors.inc({ upstream, outcome: result.outcome });
  const errorType = errorTypeOf(result);
  if (errorType !== undefined) metrics.errors.inc({ type: errorType, upstream });
  if (result.usage !== undefined) {
    metrics.tokens.inc({ provider: upstream, type: 'input' }, result.usage.input_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'output' }, result.usage.output_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'cache_read' }, result.usage.cache_read_input_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'cache_creation' }, result.usage.cache_creation_input_tokens);
  }
  // The line's object is only built when it will be written.
  if (!infoEnabled) return;
  exchange.log.info(
    {
      route,
      upstream,
      failover,
      status: result.status,
      outcome: result.outcome,
      latencyMs: round(latencyMs),
      ttfbMs: round(result.ttfbMs),
      ...(result.usage === undefined
        ? {}
        : {
            tokens: {
              input: result.usage.input_tokens,
              output: result.usage.output_tokens,
              cacheRead: result.usage.cache_read_input_tokens,
              cacheCreation: result.usage.cache_creation_input_tokens,
            },
          }),
    },
    'request completed',
  );
}

/**
 * The error a client saw: an error status, or a stream that ended with an `event: error` after
 * its 200 (the upstream broke off or ended it short); undefined for a whole answer.
 */
function errorTypeOf(result: Served['result']): AnthropicErrorType | undefined {
  if (result.status >= 400) return anthropicTypeForStatus(result.status);
  return result.outcome === 'upstream_failed' || result.outcome === 'upstream_truncated' ? 'api_error' : undefined;
}

function observeFailure(deps: KeyRequestDeps, exchange: Exchange, route: string, error: unknown): void {
  const status = error instanceof ProxyError ? error.status : 500;
  const labels = { route, upstream: 'none', status_class: statusClass(status) };
  deps.metrics.requests.inc(labels);
  deps.metrics.duration.observe(labels, exchange.elapsedMs / 1000);
  deps.metrics.errors.inc({ type: error instanceof ProxyError ? error.type : 'api_error', upstream: 'none' });
  deps.cloudWatch?.observe({
    provider: 'none',
    latencyMs: exchange.elapsedMs,
    errorType: anthropicTypeForStatus(status),
    failed: status >= 500,
    failover: false,
  });
}

function cloudWatchView(served: Served, latencyMs: number, spendUsd: number | null | undefined) {
  const { result, upstream, failover } = served;
  const usage = result.usage;
  return {
    provider: upstream,
    latencyMs,
    ttfbMs: result.ttfbMs,
    failed: result.status >= 500 || result.outcome === 'upstream_failed' || result.outcome === 'upstream_truncated',
    failover,
    ...(errorTypeOf(result) === undefined ? {} : { errorType: errorTypeOf(result) }),
    ...(spendUsd === undefined ? {} : { spendUsd }),
    ...(upstream === 'bedrock' && usage !== undefined
      ? {
          bedrockTokens: {
            input: usage.input_tokens,
            output: usage.output_tokens,
            cacheRead: usage.cache_read_input_tokens,
            cacheCreation: usage.cache_creation_input_tokens,
          },
        }
      : {}),
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
