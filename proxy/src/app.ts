import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Agent, type Dispatcher } from 'undici';
import type { Registry } from 'prom-client';
import { ProxyError, toAnthropicError, type Logger, type PriceTable } from '@ccproxy/core';
import type { ProxyConfig } from './config.ts';
import { createProxyMetrics } from './metrics.ts';
import type { KeyResolver } from './pipeline/key-resolver.ts';
import type { BedrockCredentials } from './pipeline/bedrock-credentials.ts';
import type { CircuitBreakers } from './pipeline/circuit-breakers.ts';
import { createKeyRequestHandler, logRequestFailure } from './pipeline/key-request-handler.ts';
import type { UsageRecorder } from './metering/usage-recorder.ts';
import { SpendMeter } from './metering/spend-meter.ts';
import type { CloudWatchEmf } from './metering/cloudwatch-emf.ts';
import type { Governor } from './governance/governor.ts';

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
  /** Budgets and rate limits (started and stopped by the caller); without it none are enforced. */
  governor?: Governor;
  /** Prices `ccproxy_spend_usd_total` (the usage store's table: CCPROXY_PRICE_TABLE_FILE); built-in by default. */
  prices?: PriceTable;
  /** undici dispatcher for upstream calls; by default a keep-alive Agent built from the config. */
  dispatcher?: Dispatcher;
}

/**
 * The proxy's listen backlog: a replica that restarts under a thousand reconnecting Claude Code
 * sessions gets their SYNs at once; Node's default (511) drops the rest for a 1 s SYN retry.
 * The kernel still caps it at `net.core.somaxconn`.
 */
export const proxyListenBacklog = 4096;

/**
 * Builds the proxy (no listen). `/ak/<key>/…` requests go straight from Node's `request` event
 * to the pipeline (`key-request-handler.ts`: auth → route → adapter → meter); fastify serves
 * everything else (health, readiness, metrics, 404s) and owns the server's life cycle.
 */
export async function buildApp(config: ProxyConfig, deps: ProxyDeps): Promise<FastifyInstance> {
  let closing = false;
  const dispatcher = deps.dispatcher ?? createDispatcher(config);
  const metrics = createProxyMetrics(deps.registry);
  const keyRequests = createKeyRequestHandler({
    logger: deps.logger,
    keys: deps.keys,
    metrics,
    serve: {
      dispatcher,
      planUpstream: new URL(config.anthropicUpstreamUrl),
      planApiKey: config.planApiKey,
      bedrockEndpoint: config.bedrockEndpoint,
      credentials: deps.credentials,
      breakers: deps.breakers,
      metrics,
    },
    maxBodyBytes: config.maxBodyBytes,
    bodyIdleTimeoutMs: config.requestBodyIdleTimeoutMs,
    meterPlan: config.meterPlan,
    usage: deps.usage,
    spend: new SpendMeter(deps.registry, deps.prices),
    cloudWatch: deps.cloudWatch,
    governor: deps.governor,
    closing: () => closing,
  });

  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // fastify's own request lines stay off: `/ak/` requests get one line from the pipeline's meter.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    // fastify's messages quote the URL (`'/%zz/…' is not a valid url component`): never echoed.
    frameworkErrors: (_error, request, reply) =>
      sendError(request, reply, new ProxyError('PRX_INVALID_REQUEST', 'The request URL is malformed.')),
    clientErrorHandler: answerClientError,
    // While shutting down, new requests get a 503 and in-flight streams run to their end.
    return503OnClosing: true,
    serverFactory: (fastifyHandler) => {
      const server = createServer(
        {
          // Headers must arrive within CCPROXY_REQUEST_HEADERS_TIMEOUT_MS (Node checks pending
          // connections on this interval, so it bounds how late a slow client is cut off).
          headersTimeout: config.requestHeadersTimeoutMs,
          connectionsCheckingInterval: Math.min(1_000, config.requestHeadersTimeoutMs),
          // No limit on the whole request: a 32 MB body over a slow link may take minutes. A
          // body that stalls is cut by the idle timeout instead (key-request-handler.ts).
          requestTimeout: 0,
        },
        (req, res) => {
          if (req.url?.startsWith('/ak/') === true) keyRequests(req, res);
          else fastifyHandler(req, res);
        },
      );
      // fastify's own default for idle keep-alive connections (it only applies it to servers it
      // creates itself); no socket idle timeout otherwise: answers stream for minutes.
      server.keepAliveTimeout = 72_000;
      server.setTimeout(0);
      server.on('connect', answerConnect);
      return server;
    },
  });
  // No route here takes a body: whatever one is sent is drained unread, never parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.resume();
    done(null, undefined);
  });
  // Every answer carries the id its log line has, and is neither sniffed nor cached (health,
  // readiness and metrics are live state). Only fastify's routes: `/ak/` never comes here.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-ccproxy-request-id', request.id).headers(ownRouteHeaders);
    done();
  });
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(request, reply, fromFastifyError(error)));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new ProxyError('PRX_ROUTE_NOT_FOUND')));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) =>
    deps.keys.listening ? { status: 'ready' } : reply.code(503).send({ status: 'starting' }),
  );
  app.get('/metrics', async (_request, reply) =>
    reply.type(deps.registry.contentType).send(await deps.registry.metrics()),
  );

  // `server.close()` closes the connections idle at that moment; one whose stream ends later
  // would then hold the process for the whole keep-alive timeout (72 s, seen in a rollout test).
  // So while draining, connections are closed as soon as they go idle.
  let sweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    sweep = setInterval(() => app.server.closeIdleConnections(), drainSweepMs);
  });
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    if (deps.dispatcher === undefined) await dispatcher.close();
  });
  return app;
}

/** How often a draining replica closes connections whose last response has ended. */
const drainSweepMs = 100;

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

/** Headers of every answer fastify makes (frameworkErrors skip the onRequest hook, so sendError sets them too). */
const ownRouteHeaders = { 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };

function sendError(request: FastifyRequest, reply: FastifyReply, error: ProxyError | Error): FastifyReply {
  const { status, body } = toAnthropicError(error, request.id);
  logRequestFailure(request.log as Logger, error, status, request.url);
  return reply.code(status).header('request-id', request.id).headers(ownRouteHeaders).send(body);
}

/**
 * Malformed HTTP and slow headers, which Node reports before any request exists: an Anthropic
 * error written on the raw socket, which is then closed. Logged without the error's raw packet
 * (it holds the request line, with any key in it), at debug: this is the client's problem.
 */
function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 'PRX_REQUEST_TIMEOUT'
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? 'PRX_HEADERS_TOO_LARGE'
        : 'PRX_INVALID_REQUEST';
  const id = randomUUID();
  this.log.debug({ code, errorCode: error.code, requestId: id }, 'client error');
  answerOnSocket(socket, new ProxyError(code), id);
}

/**
 * A CONNECT (a tunnel request, as to a forward proxy): Node hands it to the `connect` event, and
 * with no listener closes the socket unanswered. Refused in the error model instead.
 */
function answerConnect(_request: IncomingMessage, socket: Duplex): void {
  answerOnSocket(
    socket,
    new ProxyError('PRX_INVALID_REQUEST', 'CONNECT is not served: this is no forward proxy.'),
    randomUUID(),
  );
}

/** An answer written on the raw socket (no request object to answer through), which is then closed. */
function answerOnSocket(socket: Duplex, error: ProxyError, id: string): void {
  const { status, body } = toAnthropicError(error, id);
  const json = JSON.stringify(body);
  if (!socket.writable) return void socket.destroy();
  // Closed once written, and at the latest a second later: a client that does not read cannot hold it.
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(json)}\r\nrequest-id: ${id}\r\nx-ccproxy-request-id: ${id}\r\n\r\n${json}`,
    () => socket.destroy(),
  );
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** fastify's own errors (bad content-length, ...) → our error model. */
function fromFastifyError(error: FastifyError): ProxyError | Error {
  if (error instanceof ProxyError) return error;
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new ProxyError('PRX_INVALID_REQUEST', error.message);
  }
  return error;
}
