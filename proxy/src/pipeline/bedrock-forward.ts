import { once } from 'node:events';
import type { Dispatcher } from 'undici';
import { ProxyError, validateMessagesRequest, type KeyRecord, type MessagesRequest } from '@ccproxy/core';
import type { ConverseResponse } from '../adapters/bedrock/converse-types.ts';
import { fromBedrockFailure } from '../adapters/bedrock/errors.ts';
import { estimateTokens, foundationModelId, toCountTokensRequest } from '../adapters/bedrock/count-tokens.ts';
import { bedrockEndpoint, bedrockModelFor, conversePath } from '../adapters/bedrock/model-ids.ts';
import { toConverseRequest } from '../adapters/bedrock/request.ts';
import { fromConverseResponse } from '../adapters/bedrock/response.ts';
import { ConverseStreamTranslator } from '../adapters/bedrock/stream.ts';
import type { BedrockCredentials } from './bedrock-credentials.ts';
import type { Exchange } from './exchange.ts';
import type { ForwardResult } from './plan-forward.ts';
import type { RelayOutcome } from './sse-relay.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

export interface BedrockForwardOptions {
  dispatcher: Dispatcher;
  credentials: BedrockCredentials;
  /** AWS_ENDPOINT_URL_BEDROCK_RUNTIME; unset → the key's regional endpoint. */
  endpointOverride: string | undefined;
}

export type BedrockResult = ForwardResult;

/** Serves an Anthropic Messages request from Bedrock Converse / ConverseStream. */
export async function forwardToBedrock(
  exchange: Exchange,
  upstreamPath: string,
  record: KeyRecord,
  options: BedrockForwardOptions,
): Promise<BedrockResult> {
  const { req, res } = exchange;
  const path = upstreamPath.split('?', 1)[0];
  const counting = path === '/v1/messages/count_tokens';
  if (!counting && (path !== '/v1/messages' || req.method !== 'POST'))
    throw new ProxyError('PRX_ROUTE_NOT_FOUND', `${req.method} ${path} is not available while served by Bedrock.`);
  const bytes = await exchange.body?.bytes();
  const body = parseBody(bytes, counting ? 'count_tokens' : 'messages');
  if (counting) return countTokens(exchange, body, bytes?.length ?? 0, record, options);
  const { request: converse, toolNames, dropped } = toConverseRequest(body, req.headers['anthropic-beta']);
  if (dropped.length > 0) exchange.log.info({ dropped }, 'request parts Bedrock Converse cannot take were left out');
  const modelId = bedrockModelFor(body.model, record.bedrock);
  const endpoint = bedrockEndpoint(options.endpointOverride, record.bedrock.region);
  const stream = body.stream === true;
  const controller = new AbortController();
  const onClose = () => !res.writableFinished && controller.abort();
  res.once('close', onClose);
  try {
    const upstream = await sendToBedrock(options, record, endpoint, {
      path: conversePath(endpoint, modelId, stream),
      headers: {
        'content-type': 'application/json',
        accept: stream ? 'application/vnd.amazon.eventstream' : 'application/json',
      },
      body: JSON.stringify(converse),
      signal: controller.signal,
    });
    if (upstream.statusCode >= 300) throw await failureOf(upstream);
    const messageId = `msg_bdrk_${exchange.id.replaceAll('-', '')}`;
    // Unknown members of Bedrock's unions are skipped and warned about on the request's logger.
    const context = { model: body.model, messageId, toolNames, log: exchange.log };
    if (!stream) {
      const { message, usage } = await translated(upstream, context);
      exchange.sendJson(200, message);
      return {
        status: 200,
        outcome: 'complete',
        ttfbMs: exchange.elapsedMs,
        usage,
        usageComplete: true,
        modelServed: modelId,
        modelRequested: body.model,
      };
    }
    const translator = new ConverseStreamTranslator({ ...context, requestId: exchange.id });
    const relayed = await relayTranslated(exchange, upstream, translator, controller.signal);
    return {
      status: 200,
      outcome: relayed.outcome,
      ttfbMs: relayed.ttfbMs,
      usage: translator.usage,
      usageComplete: relayed.outcome === 'complete',
      modelServed: modelId,
      modelRequested: body.model,
    };
  } finally {
    res.off('close', onClose);
  }
}

/**
 * The stream's head goes out with its first event, not before: a stream that fails before any
 * event (an exception frame, a malformed or oversized frame) is still answered with a status and
 * Anthropic's JSON error — the garbled upstream as a 502 — instead of a 200 with an error event.
 */
async function relayTranslated(
  exchange: Exchange,
  upstream: Dispatcher.ResponseData,
  translator: ConverseStreamTranslator,
  signal: AbortSignal,
): Promise<{ outcome: RelayOutcome; ttfbMs: number }> {
  const { res } = exchange;
  let ttfbMs = 0;
  const write = (out: string): boolean => {
    if (!res.headersSent) {
      // Only an error and nothing before it: events that came first are relayed, then the error event.
      if (translator.failed && out.startsWith('event: error\n')) throw beforeFirstByte(translator.failure);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'request-id': exchange.id,
        'x-ccproxy-request-id': exchange.id,
      });
      ttfbMs = exchange.elapsedMs;
    }
    return res.write(out);
  };
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      const out = translator.push(chunk);
      if (out !== '' && !write(out)) await once(res, 'drain', { signal });
      if (translator.ended) break;
    }
    const last = translator.finish();
    if (last !== '') write(last);
    res.end();
    if (translator.truncated) return { outcome: 'upstream_truncated', ttfbMs };
    return { outcome: translator.failed ? 'upstream_failed' : 'complete', ttfbMs };
  } catch (error) {
    upstream.body.destroy();
    if (!res.headersSent) throw error instanceof ProxyError ? error : fromUpstreamFailure(error);
    if (signal.aborted || res.destroyed) return { outcome: 'client_closed', ttfbMs };
    res.end(translator.fail(fromUpstreamFailure(error)));
    return { outcome: 'upstream_failed', ttfbMs };
  }
}

/**
 * The one place a Bedrock request gets its auth: a Bearer API key, or a SigV4 signature made over
 * exactly these headers and body bytes (`BedrockCredentials.authHeaders`), for any operation.
 */
async function sendToBedrock(
  options: BedrockForwardOptions,
  record: KeyRecord,
  endpoint: URL,
  request: { path: string; headers: Record<string, string>; body: string; signal?: AbortSignal },
): Promise<Dispatcher.ResponseData> {
  const auth = await options.credentials.authHeaders(record.accessKeyId, record.bedrock.region, {
    method: 'POST',
    host: endpoint.host,
    path: request.path,
    headers: request.headers,
    body: request.body,
  });
  try {
    return await options.dispatcher.request({
      origin: endpoint.origin,
      path: request.path,
      method: 'POST',
      headers: { ...request.headers, ...auth },
      body: request.body,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    });
  } catch (error) {
    throw fromUpstreamFailure(error);
  }
}

/**
 * A Converse answer, read whole and translated. A body that is cut short, not JSON, or not a
 * Converse response is the upstream's failure (502), never the proxy's (500).
 */
async function translated(
  upstream: Dispatcher.ResponseData,
  context: Parameters<typeof fromConverseResponse>[1],
): Promise<ReturnType<typeof fromConverseResponse>> {
  let text: string;
  try {
    text = await upstream.body.text();
  } catch (error) {
    throw fromUpstreamFailure(error);
  }
  try {
    return fromConverseResponse(JSON.parse(text) as ConverseResponse, context);
  } catch (error) {
    if (error instanceof ProxyError) throw error;
    throw new ProxyError('PRX_UPSTREAM_BROKEN', 'Bedrock answered with a body that is not a whole Converse response.', {
      cause: error,
    });
  }
}

/** A stream that failed before its first event: Bedrock's own error, or the garbled stream's 502. */
function beforeFirstByte(failure: ProxyError | undefined): ProxyError {
  return failure ?? new ProxyError('PRX_UPSTREAM_BROKEN', 'Bedrock sent a malformed event stream.');
}

/** The body as JSON, checked against the Messages request schema before any translation reads it. */
function parseBody(raw: Buffer | undefined, route: 'messages' | 'count_tokens'): MessagesRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw?.toString('utf8') ?? '');
  } catch {
    throw new ProxyError('PRX_INVALID_JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ProxyError('PRX_INVALID_REQUEST', 'The request body must be a JSON object.');
  return validateMessagesRequest(parsed, route);
}

/**
 * count_tokens while on Bedrock: Bedrock's CountTokens API (with the foundation model id), and
 * where the model does not support it or the call fails, a deliberate over-estimate.
 */
async function countTokens(
  exchange: Exchange,
  body: MessagesRequest,
  bodyLength: number,
  record: KeyRecord,
  options: BedrockForwardOptions,
): Promise<BedrockResult> {
  const counted = await bedrockCount(exchange, body, record, options).catch((error: unknown) => {
    exchange.log.info(
      { reason: error instanceof Error ? error.message : String(error) },
      'Bedrock could not count tokens; answering with an estimate',
    );
    return undefined;
  });
  const inputTokens = counted ?? estimateTokens(bodyLength);
  exchange.sendJson(200, { input_tokens: inputTokens });
  return { status: 200, outcome: 'complete', ttfbMs: exchange.elapsedMs };
}

async function bedrockCount(
  exchange: Exchange,
  body: MessagesRequest,
  record: KeyRecord,
  options: BedrockForwardOptions,
): Promise<number> {
  const { request: converse } = toConverseRequest(body, exchange.req.headers['anthropic-beta']);
  const endpoint = bedrockEndpoint(options.endpointOverride, record.bedrock.region);
  const modelId = foundationModelId(bedrockModelFor(body.model, record.bedrock));
  const path = `${endpoint.pathname.replace(/\/+$/, '')}/model/${encodeURIComponent(modelId)}/count-tokens`;
  const response = await sendToBedrock(options, record, endpoint, {
    path,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(toCountTokensRequest(converse)),
  });
  if (response.statusCode >= 300) throw await failureOf(response);
  const { inputTokens } = (await response.body.json()) as { inputTokens?: unknown };
  if (typeof inputTokens !== 'number')
    throw new ProxyError('PRX_BEDROCK_ERROR', 'CountTokens answered without inputTokens.');
  return inputTokens;
}

async function failureOf(upstream: Dispatcher.ResponseData): Promise<ProxyError> {
  const text = await upstream.body.text().catch(() => '');
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { message?: string; Message?: string };
    message = parsed.message ?? parsed.Message;
  } catch {
    message = undefined;
  }
  const name = upstream.headers['x-amzn-errortype'];
  return fromBedrockFailure({ name: Array.isArray(name) ? name[0] : name, status: upstream.statusCode, message });
}
