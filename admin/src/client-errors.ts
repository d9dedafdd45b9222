import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { Value } from 'typebox/value';
import { proxyFields } from '@ccproxy/core';
import { errorBody, sendError, uriTooLong, type ErrorName } from './errors.ts';
import { securityHeaders } from './security-headers.ts';

/**
 * Slow and malformed clients, which fastify answers before any hook runs (so without the error
 * shape or the security headers) or, for a stalled request, never: here they get the admin's one
 * error shape and headers, and a stalled request is cut off in bounded time.
 */
export interface ClientLimits {
  /** Longest time for a request's headers. */
  requestHeadersTimeoutMs?: number;
  /** Longest time for a whole request, headers and body (at most 64 KiB here), from its first byte. */
  requestTimeoutMs?: number;
}

/** The proxy's own headers limit by default (CCPROXY_REQUEST_HEADERS_TIMEOUT_MS, 30 s): one number for both servers. */
export const defaultRequestHeadersTimeoutMs = Value.Create(proxyFields.requestHeadersTimeoutMs.schema);
/** 64 KiB in 30 s is 2 KiB/s: no real client is slower. */
export const defaultRequestTimeoutMs = 30_000;

/** Node checks pending requests against both limits on this interval (its default is 30 s). */
const checkingIntervalMs = 1_000;

type AdminServerOptions = Pick<FastifyServerOptions, 'requestTimeout' | 'frameworkErrors' | 'clientErrorHandler'> & {
  http: { headersTimeout: number; connectionsCheckingInterval: number };
};

/**
 * Fastify options for both limits and for the answers fastify would make itself. A total limit
 * rather than the proxy's body-idle one: admin bodies are at most 64 KiB, so a client still
 * sending after 30 s is stalled, and Node's own `requestTimeout` reports it through the same
 * `clientError` path as slow headers (fastify's default is no limit at all).
 */
export function clientErrorOptions(limits: ClientLimits): AdminServerOptions {
  const headersTimeout = limits.requestHeadersTimeoutMs ?? defaultRequestHeadersTimeoutMs;
  // Node refuses a headers limit above the whole request's.
  const requestTimeout = Math.max(limits.requestTimeoutMs ?? defaultRequestTimeoutMs, headersTimeout);
  return {
    requestTimeout,
    http: { headersTimeout, connectionsCheckingInterval: Math.min(checkingIntervalMs, headersTimeout) },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: function (this: FastifyInstance, error: Error & { code?: string }, socket: Duplex) {
      answerClientError(this, error, socket, { headersTimeout, requestTimeout });
    },
  };
}

/** A bad percent-encoding or an overlong path parameter; never echoes the path (fastify's message does). */
function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.headers(securityHeaders);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return uriTooLong(reply);
  return sendError(
    reply,
    400,
    'bad_request',
    'The request URL is malformed: every `%` must start a percent-encoded UTF-8 byte (`%` and two hex digits).',
  );
}

/** The response of the request in flight on each socket (set on the server's `request` event). */
const inFlight = new WeakMap<Duplex, ServerResponse>();

/** Call once the server exists: lets `answerClientError` see whether a request was answered already. */
export function trackResponses(app: FastifyInstance): void {
  app.server.on('request', (request, response: ServerResponse) => inFlight.set(request.socket, response));
  // A CONNECT goes to this event (Node closes the socket unanswered when nobody listens).
  app.server.on('connect', (_request, socket: Duplex) =>
    answerOnSocket(socket, 405, 'method_not_allowed', 'CONNECT is not served.'),
  );
}

/**
 * A timeout or HTTP Node cannot parse, reported before (or instead of) any request fastify sees:
 * the answer is written on the raw socket, which is then closed. A request already answered (a
 * 401 before its body was read, say) gets no second answer: its connection is just closed.
 */
function answerClientError(
  app: FastifyInstance,
  error: Error & { code?: string },
  socket: Duplex,
  limits: { headersTimeout: number; requestTimeout: number },
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const response = inFlight.get(socket);
  // The socket's last request still arriving: its headers are in, its body is not.
  const receiving = response !== undefined && !response.req.complete;
  const [status, name, message] = classify(error.code, receiving, limits);
  app.log.debug({ status, errorCode: error.code }, 'admin client error');
  if (receiving && response.headersSent) return void socket.destroy();
  answerOnSocket(socket, status, name, message);
}

/** The admin's one error shape, with its security headers, written on the raw socket, which is then closed. */
function answerOnSocket(socket: Duplex, status: number, name: Parameters<typeof errorBody>[1], message: string): void {
  if (!socket.writable) return void socket.destroy();
  const json = JSON.stringify(errorBody(status, name, message));
  const headers = {
    ...securityHeaders,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    connection: 'close',
  };
  const head = Object.entries(headers).map(([header, value]) => `${header}: ${value}\r\n`);
  // Closed once written, and at the latest a second later: a client that does not read cannot hold it.
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head.join('')}\r\n${json}`, () => socket.destroy());
  setTimeout(() => socket.destroy(), 1_000).unref();
}

const seconds = (ms: number) => `${ms / 1000} s`;

/** Node's parser codes (llhttp's `HPE_*`) → what was wrong, never quoting the request. */
const parseProblems: Record<string, string> = {
  HPE_INVALID_METHOD: 'The request method is not an HTTP method.',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'The request has both Content-Length and Transfer-Encoding.',
  HPE_INVALID_TRANSFER_ENCODING:
    'The request has both Content-Length and Transfer-Encoding, or a bad Transfer-Encoding.',
  HPE_INVALID_HEADER_TOKEN: 'A request header line is malformed.',
  HPE_INVALID_CONTENT_LENGTH: 'The Content-Length header is not a number.',
};

function classify(
  code: string | undefined,
  receivingBody: boolean,
  limits: { headersTimeout: number; requestTimeout: number },
): [number, ErrorName, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return receivingBody
      ? [
          408,
          'request_timeout',
          `The request body stopped arriving: a whole request must arrive within ${seconds(limits.requestTimeout)}.`,
        ]
      : [408, 'request_timeout', `The request headers were not complete within ${seconds(limits.headersTimeout)}.`];
  if (code === 'HPE_HEADER_OVERFLOW')
    return [431, 'headers_too_large', 'The request headers are larger than the admin accepts (16 KiB).'];
  return [400, 'bad_request', parseProblems[code ?? ''] ?? 'The request is not valid HTTP/1.1.'];
}
