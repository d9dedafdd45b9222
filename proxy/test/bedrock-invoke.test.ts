import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BedrockApi, Database } from '@ccproxy/core';
import {
  chunkFrame,
  eventStreamFrame,
  startBedrockServer,
  type BedrockReply,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const apiKey = 'bedrock-invoke-test-key';

/**
 * The InvokeModel backend against the strict Bedrock test server (Smithy HTTP bindings and the
 * Anthropic-on-Bedrock body rules), beside Converse: the key's `bedrock.api` decides the
 * operation, the native body is what Bedrock takes, the stream is byte-faithful Anthropic SSE,
 * usage is metered once, and every failure reads as it does on Converse.
 */
describe('Bedrock InvokeModel backend', () => {
  let db: Database;
  let bedrock: BedrockTestServer;
  let proxy: RunningProxy;
  let dir: string;
  const keys = {} as Record<BedrockApi, string>;

  beforeAll(async () => {
    db = await openTestDatabase();
    bedrock = await startBedrockServer({ apiKey });
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-invoke-'));
    proxy = await startProxy(db, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url }, { spoolDir: dir });
    for (const api of ['Converse', 'InvokeModel'] as const)
      keys[api] = (
        await seedKey(db, {
          routing: 'BedrockOnly',
          bedrock: {
            apiKey,
            model,
            modelMap: { 'claude-opus-4-5': 'us.anthropic.claude-opus-4-5-20251101-v1:0' },
            api,
          },
        })
      ).key;
  });
  afterAll(async () => {
    await proxy?.close();
    await bedrock?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (api: BedrockApi, body: object, headers: Record<string, string> = {}) =>
    request(`${proxy.url}/ak/${keys[api]}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-developer', ...headers },
      body: JSON.stringify(body),
    });
  const params = { model: 'claude-x', max_tokens: 50, messages: [{ role: 'user' as const, content: 'hi' }] };
  const usageRow = async (id: string) => {
    await proxy.usage?.flush();
    return db.query<{ complete: boolean; input: string; output: string; cache_read: string; cache_write: string }>(
      `SELECT complete, input_tokens::text AS input, output_tokens::text AS output,
              cache_read_tokens::text AS cache_read, cache_creation_tokens::text AS cache_write
         FROM token_usage WHERE request_id = $1`,
      [id],
    );
  };

  it('the key decides the operation: Converse keys use Converse, InvokeModel keys InvokeModel, streamed or not', async () => {
    const seen: string[][] = [];
    for (const api of ['Converse', 'InvokeModel'] as const) {
      const before = bedrock.requests.length;
      for (const stream of [false, true]) {
        const response = await post(api, { ...params, stream });
        expect(response.statusCode).toBe(200);
        await response.body.text();
      }
      seen.push(bedrock.requests.slice(before).map((r) => r.operation));
    }
    expect(seen).toEqual([
      ['Converse', 'ConverseStream'],
      ['InvokeModel', 'InvokeModelWithResponseStream'],
    ]);
  });

  it.each([
    { accessKey: null, bedrockKey: undefined, operation: 'InvokeModelWithResponseStream' },
    { accessKey: null, bedrockKey: 'InvokeModel', operation: 'InvokeModelWithResponseStream' },
    { accessKey: null, bedrockKey: 'Converse', operation: 'ConverseStream' },
    { accessKey: 'Converse', bedrockKey: 'InvokeModel', operation: 'ConverseStream' },
    { accessKey: 'InvokeModel', bedrockKey: 'Converse', operation: 'InvokeModelWithResponseStream' },
  ] as const)(
    'API precedence: AccessKey $accessKey, BedrockKey $bedrockKey → $operation (AccessKey, then BedrockKey, then InvokeModel)',
    async ({ accessKey, bedrockKey, operation }) => {
      const { key } = await seedKey(db, {
        routing: 'BedrockOnly',
        bedrock: { apiKey, model, api: accessKey, ...(bedrockKey === undefined ? {} : { keyApi: bedrockKey }) },
      });
      const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...params, stream: true }),
      });
      expect(response.statusCode).toBe(200);
      expect(await response.body.text()).toContain('event: message_stop');
      const sent = bedrock.requests.at(-1);
      expect(sent?.operation).toBe(operation);
      expect(sent?.path).toMatch(
        operation === 'ConverseStream' ? /\/converse-stream$/ : /\/invoke-with-response-stream$/,
      );
    },
  );

  it("a BedrockKey's changed api reaches a running proxy at once; a value that is no API is refused by Postgres", async () => {
    const { key, name, namespace } = await seedKey(db, {
      routing: 'BedrockOnly',
      bedrock: { apiKey, model, api: null, keyApi: 'Converse' },
    });
    const operation = async () => {
      const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(params),
      });
      await response.body.text();
      return bedrock.requests.at(-1)?.operation;
    };
    expect(await operation()).toBe('Converse');
    const where = 'WHERE namespace = $1 AND name = $2';
    await db.query(`UPDATE bedrock_keys SET api = 'InvokeModel', updated_at = now() ${where}`, [
      namespace,
      `${name}-bedrock`,
    ]);
    await expect.poll(operation).toBe('InvokeModel');
    await expect(
      db.query(`UPDATE bedrock_keys SET api = 'Invoke' ${where}`, [namespace, `${name}-bedrock`]),
    ).rejects.toThrow(/check constraint/);
  });

  it('sends the native body: anthropic_version, model in the path (mapped), no stream, accepted betas only, refused fields left out and logged', async () => {
    const response = await post(
      'InvokeModel',
      {
        ...params,
        model: 'claude-opus-4-5-20251101',
        stream: true,
        metadata: { user_id: 'u-1' },
        context_management: { edits: [] },
        system: [{ type: 'text', text: 'Be brief', cache_control: { type: 'ephemeral' } }],
        tools: [
          { name: 'Bash', input_schema: { type: 'object' } },
          { type: 'web_search_20250305', name: 'web_search' },
        ],
        thinking: { type: 'enabled', budget_tokens: 1024 },
      },
      { 'anthropic-beta': 'interleaved-thinking-2025-05-14,claude-code-20250219, oauth-2025-04-20' },
    );
    const id = response.headers['x-ccproxy-request-id'] as string;
    expect(response.statusCode).toBe(200);
    await response.body.text();
    const sent = bedrock.requests.at(-1);
    expect(sent?.operation).toBe('InvokeModelWithResponseStream');
    expect(sent?.path).toBe(
      `/model/${encodeURIComponent('us.anthropic.claude-opus-4-5-20251101-v1:0')}/invoke-with-response-stream`,
    );
    expect(sent?.body).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      anthropic_beta: ['interleaved-thinking-2025-05-14'],
      max_tokens: 50,
      messages: params.messages,
      system: [{ type: 'text', text: 'Be brief', cache_control: { type: 'ephemeral' } }],
      tools: [{ name: 'Bash', input_schema: { type: 'object' } }],
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
    expect(sent?.headers.authorization).toBe(`Bearer ${apiKey}`);
    expect(JSON.stringify(sent?.headers)).not.toContain('sk-ant-developer');
    const line = proxy.logs.find((l) => l.includes(id) && l.includes('InvokeModel cannot take'));
    for (const part of ['metadata', 'context_management', 'web_search', 'claude-code-20250219', 'oauth-2025-04-20'])
      expect(line).toContain(part);
  });

  it('inline role: system messages (Claude Code sends them) become <system-reminder> text in the user turn, tool results first', async () => {
    const response = await post('InvokeModel', {
      ...params,
      messages: [
        { role: 'user', content: 'RUN_BASH:ls' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: {} }] },
        { role: 'system', content: 'Agents: claude' },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'a.txt' }] },
      ],
      tools: [{ name: 'Bash', input_schema: { type: 'object' } }],
    });
    expect(response.statusCode).toBe(200);
    await response.body.text();
    expect((bedrock.requests.at(-1)?.body as { messages: unknown }).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'RUN_BASH:ls' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: {} }] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'a.txt' },
          { type: 'text', text: '<system-reminder>\nAgents: claude\n</system-reminder>' },
        ],
      },
    ]);
  });

  it('relays the stream byte-faithfully: every chunk event as `event: <type>` with its JSON exactly as Bedrock wrote it', async () => {
    bedrock.respondWith(() => ({
      kind: 'message',
      content: [
        { reasoningContent: { reasoningText: { text: 'Hmm.', signature: 'sig-xyz' } } },
        { text: 'Hello "world" ✓' },
        { toolUse: { toolUseId: 'toolu_bdrk_1', name: 'Read', input: { path: 'a b' } } },
      ],
    }));
    const response = await post('InvokeModel', { ...params, stream: true });
    const text = await response.body.text();
    bedrock.respondWith(undefined);
    const events = text.split('\n\n').filter((event) => event !== '');
    for (const event of events) {
      const [name, data] = event.split('\n');
      expect(name).toMatch(/^event: [a-z_]+$/);
      expect(JSON.parse((data ?? '').slice('data: '.length))).toMatchObject({ type: name?.slice('event: '.length) });
    }
    expect(events.map((event) => event.split('\n')[0]?.slice(7))).toEqual([
      'message_start',
      ...['content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop'],
      ...['content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop'],
      ...['content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop'],
      'message_delta',
      'message_stop',
    ]);
    // Bedrock's own fields pass untouched (byte-faithful: the JSON is not re-serialized).
    expect(text).toContain('"amazon-bedrock-invocationMetrics":{"inputTokenCount":30');
    const message = await new Anthropic({
      baseURL: `${proxy.url}/ak/${keys.InvokeModel}`,
      apiKey: 'k',
      maxRetries: 0,
    }).messages
      .stream(params)
      .finalMessage();
    expect(message.stop_reason).toBe('end_turn');
  });

  it.each([false, true])(
    'names the model the client asked for, as Converse does (Claude Code drops thinking of other models), streamed: %s',
    async (stream) => {
      bedrock.respondWith(() => ({
        kind: 'message',
        content: [{ reasoningContent: { reasoningText: { text: 'Hmm.', signature: 'sig-1' } } }, { text: 'ok' }],
      }));
      const answers: string[] = [];
      for (const api of ['Converse', 'InvokeModel'] as const) {
        const text = await (await post(api, { ...params, model: 'claude-opus-4-5', stream })).body.text();
        answers.push(text);
      }
      bedrock.respondWith(undefined);
      const modelOf = (text: string) =>
        stream
          ? (
              JSON.parse(/event: message_start\ndata: (.*)\n/.exec(text)?.[1] ?? '{}') as {
                message?: { model?: string };
              }
            ).message?.model
          : (JSON.parse(text) as { model?: string }).model;
      // Bedrock served the mapped model (its answer names it); the client still sees its own name.
      expect(bedrock.requests.at(-1)?.modelId).toBe('us.anthropic.claude-opus-4-5-20251101-v1:0');
      expect(answers.map(modelOf)).toEqual(['claude-opus-4-5', 'claude-opus-4-5']);
      // The rest of the answer is Bedrock's, unchanged.
      expect(answers[1]).toContain('"signature":"sig-1"');
    },
  );

  it('top-level cache_control (automatic caching) becomes a breakpoint on the last block; a fifth breakpoint is refused', async () => {
    const cache = { type: 'ephemeral' };
    const history = [
      { role: 'user' as const, content: 'first' },
      { role: 'assistant' as const, content: [{ type: 'text', text: 'answer' }] },
      { role: 'user' as const, content: 'second' },
    ];
    const ok = await post('InvokeModel', { ...params, messages: history, cache_control: cache });
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
    const sent = bedrock.requests.at(-1)?.body as { messages: unknown[]; cache_control?: unknown };
    expect(sent.cache_control).toBeUndefined();
    expect(sent.messages).toEqual([
      ...history.slice(0, 2),
      { role: 'user', content: [{ type: 'text', text: 'second', cache_control: cache }] },
    ]);
    const before = bedrock.requests.length;
    const marked = (text: string) => ({ type: 'text', text, cache_control: cache });
    const full = await post('InvokeModel', {
      ...params,
      system: [marked('a'), marked('b')],
      messages: [{ role: 'user', content: [marked('c'), marked('d'), { type: 'text', text: 'e' }] }],
      cache_control: cache,
    });
    expect(full.statusCode).toBe(400);
    expect(await full.body.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: expect.stringContaining('A maximum of 4 blocks') },
    });
    expect(bedrock.requests.length).toBe(before);
  });

  it.each([false, true])('meters usage with cache reads and writes, streamed: %s, once', async (stream) => {
    bedrock.respondWith(() => ({
      kind: 'message',
      content: [{ text: 'cached' }],
      usage: { inputTokens: 11, outputTokens: 7, cacheReadInputTokens: 100, cacheWriteInputTokens: 20 },
    }));
    const response = await post('InvokeModel', { ...params, stream });
    const id = response.headers['x-ccproxy-request-id'] as string;
    await response.body.text();
    bedrock.respondWith(undefined);
    await expect.poll(async () => (await usageRow(id)).length).toBe(1);
    expect(await usageRow(id)).toEqual([
      { complete: true, input: '11', output: '7', cache_read: '100', cache_write: '20' },
    ]);
  });

  const failures: Array<{ reply: BedrockReply; status: number; type: string }> = [
    {
      reply: {
        kind: 'error',
        status: 400,
        name: 'ValidationException',
        message: 'Input is too long for requested model.',
      },
      status: 400,
      type: 'invalid_request_error',
    },
    {
      reply: { kind: 'error', status: 403, name: 'AccessDeniedException', message: 'no access' },
      status: 500,
      type: 'api_error',
    },
    {
      reply: { kind: 'error', status: 429, name: 'ThrottlingException', message: 'Too many requests' },
      status: 429,
      type: 'rate_limit_error',
    },
    {
      reply: { kind: 'error', status: 503, name: 'ServiceUnavailableException', message: 'unavailable' },
      status: 529,
      type: 'overloaded_error',
    },
    {
      reply: { kind: 'error', status: 500, name: 'InternalServerException', message: 'boom' },
      status: 500,
      type: 'api_error',
    },
    {
      reply: { kind: 'error', status: 408, name: 'ModelTimeoutException', message: 'slow' },
      status: 504,
      type: 'timeout_error',
    },
    {
      reply: { kind: 'raw', status: 200, body: Buffer.from('{"type":"message","content":[{"ty') },
      status: 502,
      type: 'api_error',
    },
  ];

  it.each(failures)(
    'maps $reply.name $reply.status exactly as Converse does ($status $type), streamed or not',
    async ({ reply, status, type }) => {
      bedrock.respondWith(() => reply);
      const answers: unknown[] = [];
      for (const api of ['Converse', 'InvokeModel'] as const)
        for (const stream of reply.kind === 'raw' ? [false] : [false, true]) {
          const response = await post(api, { ...params, stream });
          const body = (await response.body.json()) as { error: { type: string; message: string } };
          answers.push({ status: response.statusCode, type: body.error.type, message: body.error.message });
        }
      bedrock.respondWith(undefined);
      expect(answers[0]).toMatchObject({ status, type });
      for (const answer of answers) expect(answer).toEqual(answers[0]);
    },
  );

  it.each(['Converse', 'InvokeModel'] as const)(
    '%s: a mid-stream exception ends with event: error; an exception before any event is its status',
    async (api) => {
      // Converse: messageStart + 2 deltas; InvokeModel: message_start + block start + 1 delta.
      bedrock.respondWith(() => ({
        kind: 'broken',
        content: [{ text: 'Hello there' }],
        afterFrames: 3,
        then: { exception: 'modelStreamErrorException', message: 'model broke' },
      }));
      const mid = await post(api, { ...params, stream: true });
      expect(mid.statusCode).toBe(200);
      const text = await mid.body.text();
      expect(text).toContain('event: message_start');
      expect(text).not.toContain('event: message_stop');
      expect(text).toMatch(
        /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"model broke"\},"request_id":"[^"]+"\}\n\n$/,
      );
      bedrock.respondWith(() => ({
        kind: 'broken',
        content: [{ text: 'Hello there' }],
        afterFrames: 0,
        then: { exception: 'throttlingException', message: 'slow down' },
      }));
      const first = await post(api, { ...params, stream: true });
      bedrock.respondWith(undefined);
      expect(first.statusCode).toBe(429);
      expect(await first.body.json()).toMatchObject({
        type: 'error',
        error: { type: 'rate_limit_error', message: 'slow down' },
      });
    },
  );

  it.each(['Converse', 'InvokeModel'] as const)(
    '%s: a stream that ends cleanly before message_stop → event: error, upstream_truncated, metered once as incomplete',
    async (api) => {
      bedrock.respondWith(() => ({ kind: 'broken', content: [{ text: 'Hello there' }], afterFrames: 3, then: 'end' }));
      const response = await post(api, { ...params, stream: true });
      const id = response.headers['x-ccproxy-request-id'] as string;
      const text = await response.body.text();
      bedrock.respondWith(undefined);
      expect(text).not.toContain('event: message_stop');
      expect(text).toMatch(
        /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\},"request_id":"[^"]+"\}\n\n$/,
      );
      await expect
        .poll(() => proxy.logs.find((l) => l.includes(id) && l.includes('request completed')))
        .toContain('"outcome":"upstream_truncated"');
      await expect.poll(async () => (await usageRow(id)).map((row) => row.complete)).toEqual([false]);
    },
  );

  const started = [
    chunkFrame({
      type: 'message_start',
      message: {
        id: 'msg_bdrk_x',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 9, output_tokens: 1, cache_read_input_tokens: 4, cache_creation_input_tokens: 0 },
      },
    }),
    chunkFrame({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    chunkFrame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } }),
  ];
  const breaks: Array<{ name: string; reply: BedrockReply; type: string }> = [
    {
      name: "the model's own error event",
      reply: {
        kind: 'frames',
        frames: [...started, chunkFrame({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })],
      },
      type: 'overloaded_error',
    },
    {
      name: 'an exception frame',
      reply: {
        kind: 'frames',
        frames: [...started, eventStreamFrame('exception', 'internalServerException', { message: 'boom' })],
      },
      type: 'api_error',
    },
    {
      name: 'a chunk that is not an Anthropic event',
      reply: { kind: 'frames', frames: [...started, chunkFrame({ hello: 'world' })] },
      type: 'api_error',
    },
    {
      name: 'a chunk without bytes',
      reply: { kind: 'frames', frames: [...started, eventStreamFrame('event', 'chunk', { p: 'abc' })] },
      type: 'api_error',
    },
    {
      name: 'a reset connection',
      reply: { kind: 'broken', content: [{ text: 'Hello there' }], afterFrames: 3, then: 'reset' },
      type: 'api_error',
    },
  ];

  it.each(breaks)(
    'InvokeModel: $name after the first byte ends the stream with one event: error ($type), metered once as incomplete',
    async ({ reply, type }) => {
      bedrock.respondWith(() => reply);
      const response = await post('InvokeModel', { ...params, stream: true });
      const id = response.headers['x-ccproxy-request-id'] as string;
      expect(response.statusCode).toBe(200);
      const text = await response.body.text();
      bedrock.respondWith(undefined);
      expect(text).toContain('event: message_start');
      expect(text).not.toContain('event: message_stop');
      const events = text.split('\n\n').filter((event) => event !== '');
      expect(events.filter((event) => event.startsWith('event: error'))).toHaveLength(1);
      expect(events.at(-1)).toMatch(new RegExp(`^event: error\ndata: \\{"type":"error","error":\\{"type":"${type}"`));
      await expect.poll(async () => (await usageRow(id)).map((row) => row.complete)).toEqual([false]);
    },
  );

  it('count_tokens on an InvokeModel key asks CountTokens', async () => {
    const response = await request(`${proxy.url}/ak/${keys.InvokeModel}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-x', messages: params.messages }),
    });
    expect(response.statusCode).toBe(200);
    expect(((await response.body.json()) as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
    expect(bedrock.requests.at(-1)?.operation).toBe('CountTokens');
  });
});

describe('the strict Bedrock test server on InvokeModel', () => {
  let bedrock: BedrockTestServer;
  beforeAll(async () => {
    bedrock = await startBedrockServer({ apiKey });
  });
  afterAll(async () => bedrock?.close());

  const invoke = (body: object, headers: Record<string, string> = {}, modelId = model) =>
    request(`${bedrock.url}/model/${encodeURIComponent(modelId)}/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...headers },
      body: JSON.stringify(body),
    });
  const valid = { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

  it('serves a valid body and refuses, as ValidationException, every rule of the Anthropic-on-Bedrock body and the Smithy bindings', async () => {
    expect((await invoke(valid)).statusCode).toBe(200);
    const refused: Array<[object, Record<string, string>?, string?]> = [
      [{ ...valid, model: 'claude-x' }],
      [{ ...valid, stream: true }],
      [{ max_tokens: 5, messages: valid.messages }],
      [{ ...valid, anthropic_version: '2023-06-01' }],
      [{ ...valid, anthropic_beta: ['claude-code-20250219'] }],
      [{ ...valid, max_tokens: undefined }],
      [{ ...valid, messages: [] }],
      [{ ...valid, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }],
      [valid, { 'x-amzn-bedrock-performanceconfig-latency': 'fastest' }],
      [valid, {}, 'a'.repeat(2049)],
    ];
    for (const [body, headers, modelId] of refused) {
      const response = await invoke(body, headers, modelId);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers['x-amzn-errortype']).toMatch(/^ValidationException:/);
      await response.body.text();
    }
  });
});
