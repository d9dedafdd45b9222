import { describe, expect, it } from 'vitest';
import { fromBedrockFailure } from '../../src/adapters/bedrock/errors.ts';
import { fromConverseResponse } from '../../src/adapters/bedrock/response.ts';
import { ToolNameMap } from '../../src/adapters/bedrock/tool-names.ts';

describe('fromBedrockFailure', () => {
  it.each([
    ['ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/', 429, 429, 'rate_limit_error'],
    ['ServiceQuotaExceededException', 400, 429, 'rate_limit_error'],
    ['ServiceUnavailableException', 503, 529, 'overloaded_error'],
    ['ModelNotReadyException', 429, 529, 'overloaded_error'],
    ['InternalServerException', 500, 500, 'api_error'],
    ['ModelTimeoutException', 408, 504, 'timeout_error'],
    ['ValidationException', 400, 400, 'invalid_request_error'],
    ['ResourceNotFoundException', 404, 404, 'not_found_error'],
    ['AccessDeniedException', 403, 500, 'api_error'],
    [undefined, 401, 500, 'api_error'],
    [undefined, 502, 500, 'api_error'],
  ])('%s (HTTP %s) → %s %s', (name, status, expectedStatus, type) => {
    const error = fromBedrockFailure({ name, status, message: 'detail' });
    expect({ status: error.status, type: error.type }).toEqual({ status: expectedStatus, type });
  });

  it('words context overflow as "prompt is too long" so Claude Code compacts', () => {
    const error = fromBedrockFailure({
      name: 'ValidationException',
      status: 400,
      message: 'The model returned the following errors: Input is too long for requested model.',
    });
    expect(error.message).toBe('prompt is too long: Input is too long for requested model.');
    expect(
      fromBedrockFailure({ name: 'ValidationException', message: 'prompt is too long: 210000 tokens > 200000 maximum' })
        .message,
    ).toBe('prompt is too long: 210000 tokens > 200000 maximum');
  });

  it('never shows credential details to the client', () => {
    const error = fromBedrockFailure({
      name: 'AccessDeniedException',
      status: 403,
      message: 'Authentication failed: Please make sure your API Key is valid.',
    });
    expect(error.message).not.toMatch(/API Key/);
    expect(error.status).not.toBe(401);
  });
});

describe('fromConverseResponse', () => {
  it('maps content, stop reason, stop sequence and usage', () => {
    const toolNames = new ToolNameMap();
    const { message, usage } = fromConverseResponse(
      {
        output: {
          message: {
            role: 'assistant',
            content: [
              { reasoningContent: { reasoningText: { text: 'hmm', signature: 's' } } },
              { text: 'Done' },
              { toolUse: { toolUseId: 'tooluse_1', name: 'Read', input: { a: 1 } } },
            ],
          },
        },
        stopReason: 'stop_sequence',
        usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7, cacheReadInputTokens: 100 },
        additionalModelResponseFields: { stop_sequence: 'END' },
      },
      { model: 'claude-sonnet-4-5', messageId: 'msg_bdrk_1', toolNames },
    );
    expect(message).toEqual({
      id: 'msg_bdrk_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [
        { type: 'thinking', thinking: 'hmm', signature: 's' },
        { type: 'text', text: 'Done' },
        { type: 'tool_use', id: 'tooluse_1', name: 'Read', input: { a: 1 } },
      ],
      stop_reason: 'stop_sequence',
      stop_sequence: 'END',
      usage: { input_tokens: 3, output_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 100 },
    });
    expect(usage.cache_read_input_tokens).toBe(100);
  });

  it('turns guardrail stops into refusals and malformed output into a retryable error', () => {
    const base = {
      output: { message: { role: 'assistant' as const, content: [] } },
      usage: { inputTokens: 1, outputTokens: 1 },
    };
    const context = { model: 'm', messageId: 'x', toolNames: new ToolNameMap() };
    expect(fromConverseResponse({ ...base, stopReason: 'guardrail_intervened' }, context).message.stop_reason).toBe(
      'refusal',
    );
    expect(() => fromConverseResponse({ ...base, stopReason: 'malformed_tool_use' }, context)).toThrow(
      expect.objectContaining({ type: 'api_error' }),
    );
  });
});
