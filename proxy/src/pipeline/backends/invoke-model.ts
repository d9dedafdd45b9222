import type { MessagesRequest } from '@ccproxy/core';
import { toInvokeModelBody } from '../../adapters/bedrock-invoke/request.ts';
import { fromInvokeModelResponse } from '../../adapters/bedrock-invoke/response.ts';
import { InvokeStreamTranslator } from '../../adapters/bedrock-invoke/stream.ts';
import type { Exchange } from '../exchange.ts';
import type { BedrockTranslation } from './bedrock.ts';

/**
 * Bedrock InvokeModel / InvokeModelWithResponseStream: the native Anthropic body (model in
 * the path), the answer relayed as Anthropic JSON / SSE as Bedrock's model wrote it.
 */
export function invokeModelTranslation(
  exchange: Exchange,
  body: MessagesRequest,
  endpoint: URL,
  modelId: string,
): BedrockTranslation {
  const translated = toInvokeModelBody(body, exchange.req.headers['anthropic-beta']);
  if (translated.dropped.length > 0)
    exchange.log.info({ dropped: translated.dropped }, 'request parts Bedrock InvokeModel cannot take were left out');
  const stream = body.stream === true;
  const prefix = endpoint.pathname.replace(/\/+$/, '');
  return {
    // Model ids may be ARNs with `/`: one percent-encoded path segment.
    path: `${prefix}/model/${encodeURIComponent(modelId)}/${stream ? 'invoke-with-response-stream' : 'invoke'}`,
    body: JSON.stringify(translated.body),
    stream,
    headers: stream
      ? { accept: 'application/vnd.amazon.eventstream', 'x-amzn-bedrock-accept': 'application/json' }
      : { accept: 'application/json' },
    whole: (text) => fromInvokeModelResponse(text, body.model),
    streamTranslator: () => new InvokeStreamTranslator(exchange.id, body.model),
    modelRequested: body.model,
    modelServed: modelId,
  };
}
