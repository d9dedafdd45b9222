import type { MessagesRequest } from '@ccproxy/core';
import type { ConverseResponse } from '../../adapters/bedrock/converse-types.ts';
import { conversePath } from '../../adapters/bedrock/model-ids.ts';
import { toConverseRequest } from '../../adapters/bedrock/request.ts';
import { fromConverseResponse } from '../../adapters/bedrock/response.ts';
import { ConverseStreamTranslator } from '../../adapters/bedrock/stream.ts';
import type { Exchange } from '../exchange.ts';
import type { BedrockTranslation } from './bedrock.ts';

/** Bedrock Converse / ConverseStream: the Anthropic request translated, the answer translated back. */
export function converseTranslation(
  exchange: Exchange,
  body: MessagesRequest,
  endpoint: URL,
  modelId: string,
): BedrockTranslation {
  const { request, toolNames, dropped } = toConverseRequest(body, exchange.req.headers['anthropic-beta']);
  if (dropped.length > 0) exchange.log.info({ dropped }, 'request parts Bedrock Converse cannot take were left out');
  const stream = body.stream === true;
  // Unknown members of Bedrock's unions are skipped and warned about on the request's logger.
  const context = {
    model: body.model,
    messageId: `msg_bdrk_${exchange.id.replaceAll('-', '')}`,
    toolNames,
    log: exchange.log,
  };
  return {
    path: conversePath(endpoint, modelId, stream),
    body: JSON.stringify(request),
    stream,
    headers: { accept: stream ? 'application/vnd.amazon.eventstream' : 'application/json' },
    whole(text) {
      const { message, usage } = fromConverseResponse(JSON.parse(text) as ConverseResponse, context);
      return { body: JSON.stringify(message), usage };
    },
    streamTranslator: () => new ConverseStreamTranslator({ ...context, requestId: exchange.id }),
    modelRequested: body.model,
    modelServed: modelId,
  };
}
