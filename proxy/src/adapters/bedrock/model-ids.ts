import { ProxyError, type KeyRecord } from '@ccproxy/core';

/**
 * The Bedrock model for a request: the access key's `bedrock.modelMap` entry for the requested
 * model (exact, then without a `-YYYYMMDD` date suffix), else its default `bedrock.model`.
 */
export function bedrockModelFor(requested: string, bedrock: KeyRecord['bedrock']): string {
  const undated = requested.replace(/-\d{8}$/, '');
  const model = bedrock.modelMap[requested] ?? bedrock.modelMap[undated] ?? bedrock.model;
  if (model === null || model === undefined)
    throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
      cause: new Error(`no Bedrock model configured for ${requested}`),
    });
  return model;
}

/**
 * `{endpoint}/model/{modelId}/converse[-stream]`. Model ids may be ARNs with `/`, so the id is
 * one percent-encoded path segment.
 */
export function conversePath(endpoint: URL, modelId: string, stream: boolean): string {
  const prefix = endpoint.pathname.replace(/\/+$/, '');
  return `${prefix}/model/${encodeURIComponent(modelId)}/${stream ? 'converse-stream' : 'converse'}`;
}

/** The Bedrock Runtime endpoint: the override (AWS_ENDPOINT_URL_BEDROCK_RUNTIME) or the region's. */
export function bedrockEndpoint(override: string | undefined, region: string | null): URL {
  if (override !== undefined) return new URL(override);
  if (region === null)
    throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
      cause: new Error('no Bedrock region configured for this access key'),
    });
  return new URL(`https://bedrock-runtime.${region}.amazonaws.com`);
}
