import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Agent, type Dispatcher } from 'undici';
import type { Registry } from 'prom-client';
import { anthropicTypeForStatus, ProxyError, redactKeyInUrl, toAnthropicError, type KeyRecord, type Logger } from '@ccproxy/core';
import type { ProxyConfig } from './config.ts';
import { createProxyMetrics, routeLabel, statusClass, type ProxyMetrics } from './metrics.ts';
import type { KeyResolver } from './pipeline/key-resolver.ts';
import type { BedrockCredentials } from './pipeline/bedrock-credentials.ts';
import type { CircuitBreakers } from './pipeline/circuit-breakers.ts';
import { bodyTooLarge, RequestBody } from './pipeline/request-body.ts';
import { serve, type Served } from './pipeline/serve.ts';
import type { UsageRecorder } from './metering/usage-recorder.ts';
import { usageRecordOf } from './metering/usage-record.ts';
import type { CloudWatchEmf } from './metering/cloudwatch-emf.ts';

export interface ProxyDeps {
  logger: Logger;
  registry: Registry;
  keys: KeyResolver;
  /** Per-key circuit breakers shared through Postgres; without them PlanWithFailover always tries Plan first. */
  breakers?: CircuitBreakers;
  /** Decrypts Bedrock API keys; without it, requests bound for Bedrock fail with a configuration error. */
  credentials?: BedrockCredentials;
  /** CloudWatch metrics (EMF); absent unless CCPROXY_CLOUDWATCH_EMF is on. */
  cloudWatch?: CloudWatchEmf;
  /** Stores token usage (off the request path); without it usage is only counted in metrics. */
  usage?: UsageRecorder;
  /** undici dispatcher for upstream calls; by default a keep-alive Agent built from the config. */
  dispatcher?: Dispatcher;
}

/**
 * The proxy's listen backlog: a replica that restarts under a thousand reconnecting Claude Code
 * sessions gets their SYNs at once; Node's default (511) drops the rest for a 1 s SYN retry.
 * The kernel still caps it at `net.core.somaxconn`.
 */
export const proxyListenBacklog = 4096;

/** Builds the proxy (no listen). Pipeline per request: auth → route → adapter → meter. */
export async function buildApp(config: ProxyConfig, deps: ProxyDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request is written by `meter`; fastify's own request lines would double it.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: 512 },
    // A URL the router cannot even decode is, under /ak/, a malformed key: same 404 as any bad key.
    frameworkErrors: (error, request, reply) =>
      sendError(request, reply, request.url.startsWith('/ak/') ? new ProxyError('PRX_KEY_NOT_FOUND') : new ProxyError('PRX_INVALID_REQUEST', error.message)),
    // While shutting down, new requests get a 503 and in-flight streams run to their end.
    return503OnClosing: true,
  });
  const dispatcher = deps.dispatcher ?? createDispatcher(config);
  const metrics = createProxyMetrics(deps.registry);
  const infoEnabled = deps.logger.isLevelEnabled('info');
  const serveDeps = {
    dispatcher,
    planUpstream: new URL(config.anthropicUpstreamUrl),
    planApiKey: config.planApiKey,
    bedrockEndpoint: config.bedrockEndpoint,
    credentials: deps.credentials,
    breakers: deps.breakers,
    metrics,
  };

  // Bodies stay bytes and are not read here: the Plan path streams them upstream unchanged as
  // they arrive; the Bedrock paths read them whole. A declared length over the limit is refused
  // before a byte is read (a chunked body is counted as it comes).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const header = request.headers['content-length'];
    const declared = header === undefined ? undefined : Number(header);
    if (declared !== undefined && declared > config.maxBodyBytes) {
      done(bodyTooLarge(config.maxBodyBytes), undefined);
      return;
    }
    done(null, new RequestBody(payload, declared, config.maxBodyBytes));
  });

  // Every answer carries the id its log line has (hijacked upstream responses set it in writeHead).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-ccproxy-request-id', request.id);
    done();
  });

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, fromFastifyError(error)));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new ProxyError('PRX_ROUTE_NOT_FOUND')));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => (deps.keys.listening ? { status: 'ready' } : reply.code(503).send({ status: 'starting' })));
  app.get('/metrics', async (_request, reply) => reply.type(deps.registry.contentType).send(await deps.registry.metrics()));

  // `/ak/:key` alone too: Claude Code probes its base URL (HEAD) before the first request.
  app.all<{ Params: { key: string } }>('/ak/:key', (request, reply) => handle(request, reply));
  app.all<{ Params: { key: string } }>('/ak/:key/*', (request, reply) => handle(request, reply));

  async function handle(request: FastifyRequest<{ Params: { key: string } }>, reply: FastifyReply): Promise<void> {
    const upstreamPath = stripKeyPrefix(request.url);
    const route = routeLabel(upstreamPath);
    let record: KeyRecord;
    let served: Served;
    try {
      record = await authenticate(deps.keys, request.params.key);
      // request.log is already this request's own child (fastify makes one per request when given a
      // logger), so binding onto it costs less than a second child per request.
      (request.log as Logger).setBindings({ keyPrefix: record.keyPrefix, user: `${record.namespace}/${record.userName}` });
      served = await serve(request, reply, upstreamPath, record, serveDeps);
    } catch (error) {
      observe(metrics, reply, route, error);
      const status = error instanceof ProxyError ? error.status : 500;
      deps.cloudWatch?.observe({ provider: 'none', latencyMs: reply.elapsedTime, errorType: anthropicTypeForStatus(status), failover: false });
      throw error;
    }
    meter(metrics, request, reply, route, served, infoEnabled);
    deps.cloudWatch?.observe(cloudWatchView(served, reply.elapsedTime));
    const usage = usageRecordOf(request.id, record, served, reply.elapsedTime);
    if (usage !== undefined && (served.upstream === 'bedrock' || config.meterPlan)) deps.usage?.record(usage);
  }

  app.addHook('onClose', async () => {
    if (deps.dispatcher === undefined) await dispatcher.close();
  });
  return app;
}

async function authenticate(keys: KeyResolver, key: string) {
  let record;
  try {
    record = await keys.resolve(key);
  } catch (error) {
    throw new ProxyError('PRX_UNAVAILABLE', 'Access keys cannot be checked right now; try again shortly.', { cause: error });
  }
  if (record === undefined) throw new ProxyError('PRX_KEY_NOT_FOUND');
  return record;
}

function createDispatcher(config: ProxyConfig): Dispatcher {
  return new Agent({
    connect: { timeout: config.connectTimeoutMs, noDelay: true },
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyTimeoutMs,
    keepAliveTimeout: 30_000,
    // One connection per in-flight request (no pipelining): a replica holding a thousand Claude
    // Code streams needs a thousand upstream sockets. The cap only guards the descriptor table.
    connections: 4096,
  });
}

/** `/ak/<key>/v1/messages?beta=true` → `/v1/messages?beta=true` (query string kept verbatim). */
function stripKeyPrefix(url: string): string {
  const rest = url.slice('/ak/'.length);
  const end = rest.search(/[/?]/);
  if (end === -1) return '/';
  return rest[end] === '/' ? rest.slice(end) : `/${rest.slice(end)}`;
}

function meter(metrics: ProxyMetrics, request: FastifyRequest, reply: FastifyReply, route: string, served: Served, infoEnabled: boolean): void {
  const { result, upstream, failover } = served;
  const labels = { route, upstream, status_class: statusClass(result.status) };
  metrics.requests.inc(labels);
  metrics.duration.observe(labels, reply.elapsedTime / 1000);
  metrics.ttfb.observe({ route, upstream }, result.ttfbMs / 1000);
  if (result.outcome !== 'complete') metrics.streamErrors.inc({ upstream, outcome: result.outcome });
  if (result.status >= 400) metrics.errors.inc({ type: anthropicTypeForStatus(result.status), upstream });
  if (result.usage !== undefined) {
    metrics.tokens.inc({ provider: upstream, type: 'input' }, result.usage.input_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'output' }, result.usage.output_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'cache_read' }, result.usage.cache_read_input_tokens);
    metrics.tokens.inc({ provider: upstream, type: 'cache_creation' }, result.usage.cache_creation_input_tokens);
  }
  // The line's object is only built when it will be written.
  if (!infoEnabled) return;
  request.log.info(
    {
      route, upstream, failover, status: result.status, outcome: result.outcome, latencyMs: round(reply.elapsedTime), ttfbMs: round(result.ttfbMs),
      ...(result.usage === undefined ? {} : { tokens: { input: result.usage.input_tokens, output: result.usage.output_tokens, cacheRead: result.usage.cache_read_input_tokens, cacheCreation: result.usage.cache_creation_input_tokens } }),
    },
    'request completed',
  );
}

function observe(metrics: ProxyMetrics, reply: FastifyReply, route: string, error: unknown): void {
  const status = error instanceof ProxyError ? error.status : 500;
  const labels = { route, upstream: 'none', status_class: statusClass(status) };
  metrics.requests.inc(labels);
  metrics.duration.observe(labels, reply.elapsedTime / 1000);
  metrics.errors.inc({ type: error instanceof ProxyError ? error.type : 'api_error', upstream: 'none' });
}

function cloudWatchView(served: Served, latencyMs: number) {
  const { result, upstream, failover } = served;
  const usage = result.usage;
  return {
    provider: upstream,
    latencyMs,
    failover,
    ...(result.status >= 400 ? { errorType: anthropicTypeForStatus(result.status) } : {}),
    ...(upstream === 'bedrock' && usage !== undefined
      ? { bedrockTokens: { input: usage.input_tokens, output: usage.output_tokens, cacheRead: usage.cache_read_input_tokens, cacheCreation: usage.cache_creation_input_tokens } }
      : {}),
  };
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: ProxyError | Error): FastifyReply {
  const { status, body } = toAnthropicError(error, request.id);
  const level = status >= 500 ? 'warn' : 'info';
  request.log[level](
    { status, code: error instanceof ProxyError ? error.code : 'PRX_INTERNAL', url: redactKeyInUrl(request.url), err: status >= 500 ? error : undefined },
    'request failed',
  );
  return reply.code(status).header('request-id', request.id).send(body);
}

/** fastify's own errors (body limits, bad content-length, ...) → our error model. */
function fromFastifyError(error: FastifyError): ProxyError | Error {
  if (error instanceof ProxyError) return error;
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProxyError('PRX_INVALID_REQUEST', error.message);
  }
  return error;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

