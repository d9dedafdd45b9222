import type { Dispatcher } from 'undici';
import { ProxyError, validateMessagesRequest, type KeyRecord, type MessagesRequest } from '@ccproxy/core';
import { estimateTokens, foundationModelId, toCountTokensRequest } from '../adapters/bedrock/count-tokens.ts';
import { bedrockEndpoint, bedrockModelFor } from '../adapters/bedrock/model-ids.ts';
import { toConverseRequest } from '../adapters/bedrock/request.ts';
import { bedrockAuthHeaders, BedrockBackend, bedrockFailureOf, type BedrockAuth } from './backends/bedrock.ts';
import { converseTranslation } from './backends/converse.ts';
import { invokeModelTranslation } from './backends/invoke-model.ts';
import type { BedrockCredentials } from './bedrock-credentials.ts';
import type { Exchange } from './exchange.ts';
import { forward } from './forward.ts';
import type { ForwardResult } from './translator.ts';
import { fromUpstreamFailure } from './upstream-error.ts';

export interface BedrockForwardOptions {
  dispatcher: Dispatcher;
  credentials: BedrockCredentials;
  /** AWS_ENDPOINT_URL_BEDROCK_RUNTIME; unset → the key's regional endpoint. */
  endpointOverride: string | undefined;
}

export type BedrockResult = ForwardResult;

/**
 * Serves an Anthropic Messages request from Bedrock, through the backend the access key names
 * (`spec.bedrock.api`): InvokeModel (the native Anthropic body) or Converse (translated).
 */
export async function forwardToBedrock(
  exchange: Exchange,
  upstreamPath: string,
  record: KeyRecord,
  options: BedrockForwardOptions,
): Promise<BedrockResult> {
  const { req } = exchange;
  const path = upstreamPath.split('?', 1)[0];
  const counting = path === '/v1/messages/count_tokens';
  if (!counting && (path !== '/v1/messages' || req.method !== 'POST'))
    throw new ProxyError('PRX_ROUTE_NOT_FOUND', `${req.method} ${path} is not available while served by Bedrock.`);
  const bytes = await exchange.body?.bytes();
  const body = parseBody(bytes, counting ? 'count_tokens' : 'messages');
  // The one call site where Bedrock's authentication headers are obtained, for every operation.
  const auth: BedrockAuth = (request) => bedrockAuthHeaders(options.credentials, record, request);
  if (counting) return countTokens(exchange, body, bytes?.length ?? 0, record, options, auth);
  const modelId = bedrockModelFor(body.model, record.bedrock);
  const endpoint = bedrockEndpoint(options.endpointOverride, record.bedrock.region);
  const translate = record.bedrock.api === 'InvokeModel' ? invokeModelTranslation : converseTranslation;
  const backend = new BedrockBackend(exchange, translate(exchange, body, endpoint, modelId), endpoint, auth);
  return forward(exchange, backend, options.dispatcher);
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
 * count_tokens while on Bedrock (either backend): Bedrock's CountTokens API (with the foundation
 * model id), and where the model does not support it or the call fails, a deliberate over-estimate.
 */
async function countTokens(
  exchange: Exchange,
  body: MessagesRequest,
  bodyLength: number,
  record: KeyRecord,
  options: BedrockForwardOptions,
  auth: BedrockAuth,
): Promise<BedrockResult> {
  const counted = await bedrockCount(exchange, body, record, options, auth).catch((error: unknown) => {
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
  auth: BedrockAuth,
): Promise<number> {
  const { request: converse } = toConverseRequest(body, exchange.req.headers['anthropic-beta']);
  const endpoint = bedrockEndpoint(options.endpointOverride, record.bedrock.region);
  const modelId = foundationModelId(bedrockModelFor(body.model, record.bedrock));
  const path = `${endpoint.pathname.replace(/\/+$/, '')}/model/${encodeURIComponent(modelId)}/count-tokens`;
  const countBody = JSON.stringify(toCountTokensRequest(converse));
  const headers = await auth({
    origin: endpoint.origin,
    path,
    headers: { 'content-type': 'application/json' },
    body: countBody,
  });
  let response: Dispatcher.ResponseData;
  try {
    response = await options.dispatcher.request({
      origin: endpoint.origin,
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: countBody,
    });
  } catch (error) {
    throw fromUpstreamFailure(error);
  }
  if (response.statusCode >= 300) throw await bedrockFailureOf(response);
  const { inputTokens } = (await response.body.json()) as { inputTokens?: unknown };
  if (typeof inputTokens !== 'number')
    throw new ProxyError('PRX_BEDROCK_ERROR', 'CountTokens answered without inputTokens.');
  return inputTokens;
}
