import type { ConverseRequest } from './converse-types.ts';

/** Body of Bedrock CountTokens for a Converse request (the fields that count as input). */
export function toCountTokensRequest(converse: ConverseRequest): {
  input: { converse: Pick<ConverseRequest, 'messages' | 'system' | 'toolConfig' | 'additionalModelRequestFields'> };
} {
  const { messages, system, toolConfig, additionalModelRequestFields } = converse;
  return {
    input: {
      converse: {
        messages,
        ...(system === undefined ? {} : { system }),
        ...(toolConfig === undefined ? {} : { toolConfig }),
        ...(additionalModelRequestFields === undefined ? {} : { additionalModelRequestFields }),
      },
    },
  };
}

/**
 * CountTokens takes a foundation model id: inference-profile prefixes (`global.`, `us.`, …) are
 * rejected with "The provided model doesn't support counting tokens", so they are stripped.
 * ARNs are left as they are (and may well be refused: the caller falls back to an estimate).
 */
export function foundationModelId(modelId: string): string {
  return modelId.replace(/^(global|us|us-gov|eu|jp|au|apac|ca)\.(?=anthropic\.)/, '');
}

/**
 * The estimate used when Bedrock cannot count: ≈3 bytes per token, which over-counts on purpose —
 * an under-count would let Claude Code skip compaction and then hit "prompt is too long".
 */
export function estimateTokens(bodyBytes: number): number {
  return Math.ceil(bodyBytes / 3);
}
