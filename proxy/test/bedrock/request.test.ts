import { describe, expect, it } from 'vitest';
import type { MessagesRequest } from '@ccproxy/core';
import { toConverseRequest } from '../../src/adapters/bedrock/request.ts';

const longTool = `mcp__company_knowledge_base__search_documents_by_semantic_similarity_and_filters`;

/** Shaped like what Claude Code sends (system blocks, inline system messages, tools, history). */
const claudeCodeRequest: MessagesRequest = {
  model: 'claude-sonnet-4-5',
  max_tokens: 32000,
  temperature: 0,
  stream: true,
  system: [
    { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
    { type: 'text', text: 'Project instructions', cache_control: { type: 'ephemeral' } },
    { type: 'text', text: '   ' },
  ],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'fix the bug' },
        { type: 'text', text: '' },
      ],
    },
    { role: 'system', content: 'Current date: 2026-11-24' },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'Let me read the file.', signature: 'EqQBsig' },
        { type: 'thinking', thinking: 'unsigned', signature: '' },
        { type: 'tool_use', id: 'toolu_01A', name: 'Read', input: { file_path: 'a.ts' } },
        { type: 'tool_use', id: 'call with spaces', name: longTool, input: { q: 'x' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_01A', content: 'const a = 1;' },
        {
          type: 'tool_result',
          tool_use_id: 'call with spaces',
          content: [{ type: 'text', text: '  ' }],
          is_error: true,
          cache_control: { type: 'ephemeral', ttl: '1h' },
        },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        {
          type: 'document',
          source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' },
          title: 'spec_v2.pdf',
        },
      ],
    },
  ],
  tools: [
    {
      name: 'Read',
      description: 'Read a file',
      input_schema: { type: 'object', properties: { file_path: { type: 'string' } } },
    },
    { name: longTool, description: '', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' } },
    { name: 'web_search', type: 'web_search_20250305' },
  ],
  tool_choice: { type: 'auto' },
  thinking: { type: 'adaptive' },
  output_config: { effort: 'high' },
  metadata: { user_id: '{"device_id":"abc","session_id":"s"}' },
  context_management: { edits: [{ type: 'clear_thinking_20251015' }] },
};

describe('toConverseRequest', () => {
  const { request, toolNames, dropped } = toConverseRequest(
    claudeCodeRequest,
    'claude-code-20250219,interleaved-thinking-2025-05-14, context-management-2025-06-27',
  );
  const shortTool = toolNames.toBedrock(longTool);

  it('maps system blocks, dropping blank ones and turning cache_control into cache points', () => {
    expect(request.system).toEqual([
      { text: "You are Claude Code, Anthropic's official CLI for Claude." },
      { text: 'Project instructions' },
      { cachePoint: { type: 'default' } },
    ]);
  });

  it('keeps roles alternating, folds inline system messages into the user turn, drops what Bedrock refuses', () => {
    expect(request.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(request.messages[0]?.content).toEqual([
      { text: 'fix the bug' },
      { text: '<system-reminder>\nCurrent date: 2026-11-24\n</system-reminder>' },
    ]);
    expect(request.messages[1]?.content).toEqual([
      { reasoningContent: { reasoningText: { text: 'Let me read the file.', signature: 'EqQBsig' } } },
      { toolUse: { toolUseId: 'toolu_01A', name: 'Read', input: { file_path: 'a.ts' } } },
      {
        toolUse: {
          toolUseId: expect.stringMatching(/^call_with_spaces_[0-9a-f]{16}$/),
          name: shortTool,
          input: { q: 'x' },
        },
      },
    ]);
  });

  it('maps tool results (status, placeholder for empty output, cache points) and merges the next user turn after them', () => {
    const user = request.messages[2]?.content ?? [];
    expect(user[0]).toEqual({
      toolResult: { toolUseId: 'toolu_01A', content: [{ text: 'const a = 1;' }], status: 'success' },
    });
    expect(user[1]).toEqual({
      toolResult: {
        toolUseId: expect.stringMatching(/^call_with_spaces_/),
        content: [{ text: '(empty)' }],
        status: 'error',
      },
    });
    expect(user.slice(2)).toEqual([
      { cachePoint: { type: 'default', ttl: '1h' } },
      { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } },
      { document: { format: 'pdf', name: 'spec-v2-pdf', source: { bytes: 'JVBERi0=' } } },
    ]);
  });

  it('maps tools reversibly (names over 64 characters shortened), drops server tools, keeps tool_choice', () => {
    expect(shortTool).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(toolNames.fromBedrock(shortTool)).toBe(longTool);
    expect(request.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'Read',
            description: 'Read a file',
            inputSchema: { json: { type: 'object', properties: { file_path: { type: 'string' } } } },
          },
        },
        { toolSpec: { name: shortTool, inputSchema: { json: { type: 'object' } } } },
        { cachePoint: { type: 'default' } },
      ],
      toolChoice: { auto: {} },
    });
  });

  it('keeps temperature 0, sends thinking/effort/allowed betas as additional fields, and says what it dropped', () => {
    expect(request.inferenceConfig).toEqual({ maxTokens: 32000, temperature: 0 });
    expect(request.additionalModelRequestFields).toEqual({
      thinking: { type: 'adaptive' },
      output_config: { effort: 'high' },
      anthropic_beta: ['interleaved-thinking-2025-05-14'],
    });
    expect(dropped).toEqual(
      expect.arrayContaining([
        'unsigned thinking block',
        'server tool web_search (web_search_20250305)',
        'metadata',
        'context_management',
        'anthropic-beta claude-code-20250219',
        'anthropic-beta context-management-2025-06-27',
      ]),
    );
    expect(JSON.stringify(request)).not.toContain('device_id');
  });

  it('adds a placeholder tool when the history has tool blocks but the request has no tools', () => {
    const { request: summary } = toConverseRequest(
      { ...claudeCodeRequest, tools: undefined, tool_choice: undefined },
      undefined,
    );
    expect(summary.toolConfig?.tools).toEqual([
      { toolSpec: expect.objectContaining({ name: 'ccproxy_placeholder_do_not_call' }) },
    ]);
  });

  it('starts with a user turn and never sends an empty one', () => {
    const { request: odd } = toConverseRequest(
      {
        model: 'm',
        max_tokens: 5,
        messages: [
          { role: 'assistant', content: 'Hi' },
          { role: 'user', content: '   ' },
        ],
        stop_sequences: ['', 'END'],
      },
      undefined,
    );
    expect(odd.messages).toEqual([
      { role: 'user', content: [{ text: '(empty)' }] },
      { role: 'assistant', content: [{ text: 'Hi' }] },
      { role: 'user', content: [{ text: '(empty)' }] },
    ]);
    expect(odd.inferenceConfig).toEqual({ maxTokens: 5, stopSequences: ['END'] });
    expect(odd.additionalModelResponseFieldPaths).toEqual(['/stop_sequence']);
  });

  it('rejects what cannot be expressed with a clear 400', () => {
    const url = {
      model: 'm',
      messages: [
        {
          role: 'user' as const,
          content: [{ type: 'image' as const, source: { type: 'url' as const, url: 'https://x/a.png' } }],
        },
      ],
    };
    expect(() => toConverseRequest(url, undefined)).toThrow(
      expect.objectContaining({
        status: 400,
        type: 'invalid_request_error',
        message: expect.stringMatching(/url source/),
      }),
    );
    const bmp = {
      model: 'm',
      messages: [
        {
          role: 'user' as const,
          content: [
            { type: 'image' as const, source: { type: 'base64' as const, media_type: 'image/bmp', data: 'x' } },
          ],
        },
      ],
    };
    expect(() => toConverseRequest(bmp, undefined)).toThrow(/image\/bmp/);
  });
});
