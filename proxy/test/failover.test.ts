import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  freePort,
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrockModel = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const bedrock = {
  apiKey: 'bedrock-api-key-for-tests',
  model: bedrockModel,
  modelMap: { 'claude-opus-4-5': 'global.anthropic.claude-opus-4-5-20251101-v1:0' },
};

/** Anthropic failing → the same request served by the strict Bedrock test server, unnoticed by the SDK. */
describe('failover to Bedrock', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let proxy: RunningProxy;
  let key: string;

  beforeAll(async () => {
    db = await openTestDatabase();
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    proxy = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await db?.close();
  });

  const client = (accessKey = key) =>
    new Anthropic({ baseURL: `${proxy.url}/ak/${accessKey}`, apiKey: 'sk-ant-developer', maxRetries: 0 });
  const ask = {
    model: 'claude-test-model',
    max_tokens: 100,
    messages: [{ role: 'user' as const, content: 'RUN_BASH:echo failover' }],
  };
  const failWith = (status: number, type: string) =>
    anthropic.respondWith(() => ({ kind: 'error', status, type, message: 'nope' }));

  it.each([
    [529, 'overloaded_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
  ])('Anthropic %s → Bedrock answers, streamed and not, indistinguishably for the SDK', async (status, type) => {
    // A key of its own: failures accumulate in the key's circuit breaker.
    ({ key } = await seedKey(db, { bedrock }));
    failWith(status, type);
    const before = bedrockServer.requests.length;
    const streamed = await client().messages.stream(ask).finalMessage();
    const plain = await client().messages.create(ask);
    anthropic.respondWith(undefined);
    for (const message of [streamed, plain]) {
      expect(message.model).toBe('claude-test-model');
      expect(message.stop_reason).toBe('tool_use');
      expect(message.content).toEqual([
        {
          type: 'tool_use',
          id: expect.stringMatching(/^tooluse_/),
          name: 'Bash',
          input: { command: 'echo failover', description: 'Run the requested command' },
        },
      ]);
      expect(message.usage).toMatchObject({ input_tokens: 30, output_tokens: 15 });
    }
    const sent = bedrockServer.requests.slice(before);
    expect(sent.map((r) => r.path)).toEqual([
      `/model/${encodeURIComponent(bedrockModel)}/converse-stream`,
      `/model/${encodeURIComponent(bedrockModel)}/converse`,
    ]);
    expect(sent[0]?.headers.authorization).toBe(`Bearer ${bedrock.apiKey}`);
    expect(JSON.stringify(sent[0]?.headers)).not.toContain('sk-ant-developer');
  });

  it('fails over when Anthropic is unreachable, maps models, and counts failovers', async () => {
    ({ key } = await seedKey(db, { bedrock }));
    const down = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}`,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
    });
    try {
      const message = await new Anthropic({
        baseURL: `${down.url}/ak/${key}`,
        apiKey: 'k',
        maxRetries: 0,
      }).messages.create({ ...ask, model: 'claude-opus-4-5-20251101', messages: [{ role: 'user', content: 'hello' }] });
      expect(message.content).toEqual([{ type: 'text', text: 'Hello from the Bedrock test server' }]);
      expect(bedrockServer.requests.at(-1)?.modelId).toBe('global.anthropic.claude-opus-4-5-20251101-v1:0');
      expect(await down.registry.getSingleMetricAsString('ccproxy_failovers_total')).toMatch(
        /ccproxy_failovers_total\{reason="unreachable"\} 1/,
      );
    } finally {
      await down.close();
    }
  });

  it('a large body streamed to Anthropic reaches Bedrock whole when Anthropic fails or cannot be reached', async () => {
    ({ key } = await seedKey(db, { bedrock }));
    const big = { ...ask, messages: [{ role: 'user' as const, content: `hello ${'ü'.repeat(1024 * 1024)}` }] };
    const down = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}`,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
    });
    try {
      failWith(529, 'overloaded_error');
      for (const base of [proxy.url, down.url]) {
        const message = await new Anthropic({
          baseURL: `${base}/ak/${key}`,
          apiKey: 'k',
          maxRetries: 0,
        }).messages.create(big);
        expect(message.content).toEqual([{ type: 'text', text: 'Hello from the Bedrock test server' }]);
        const converse = bedrockServer.requests.at(-1)?.body as {
          messages: Array<{ content: Array<{ text: string }> }>;
        };
        expect(converse.messages[0]?.content[0]?.text).toBe(big.messages[0]?.content);
      }
      expect(anthropic.requests.at(-1)?.body.length).toBe(Buffer.byteLength(JSON.stringify(big)));
    } finally {
      anthropic.respondWith(undefined);
      await down.close();
    }
  });

  it('continues on Bedrock a conversation begun on Anthropic: tool history and signed thinking pass the strict server', async () => {
    ({ key } = await seedKey(db, { bedrock }));
    failWith(529, 'overloaded_error');
    const history: Anthropic.MessageParam[] = [
      { role: 'user', content: [{ type: 'text', text: 'RUN_BASH:ls' }] },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'I should list files.', signature: 'EqQBCkYIBxgCKkA=' },
          { type: 'text', text: 'Listing.' },
          { type: 'tool_use', id: 'toolu_01XyZ', name: 'Bash', input: { command: 'ls' } },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 'toolu_01XyZ', content: 'README.md\npackage.json' }],
      },
    ];
    const message = await client()
      .messages.stream({
        model: 'claude-test-model',
        max_tokens: 2000,
        thinking: { type: 'enabled', budget_tokens: 1024 },
        tools: [
          {
            name: 'Bash',
            description: 'Run a command',
            input_schema: { type: 'object', properties: { command: { type: 'string' } } },
          },
        ],
        messages: history,
      })
      .finalMessage();
    anthropic.respondWith(undefined);
    expect(message.content).toEqual([{ type: 'text', text: 'Tool said: README.md\npackage.json' }]);
    const converse = bedrockServer.requests.at(-1)?.body as {
      messages: Array<{ content: unknown[] }>;
      additionalModelRequestFields: unknown;
    };
    expect(converse.messages[1]?.content[0]).toEqual({
      reasoningContent: { reasoningText: { text: 'I should list files.', signature: 'EqQBCkYIBxgCKkA=' } },
    });
    expect(converse.additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 1024 } });
  });

  it('does not fail over on a 4xx, nor for PlanOnly keys; BedrockOnly keys never touch Anthropic', async () => {
    ({ key } = await seedKey(db, { bedrock }));
    const planOnly = (await seedKey(db, { routing: 'PlanOnly', bedrock })).key;
    const bedrockOnly = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
    failWith(400, 'invalid_request_error');
    await expect(client().messages.create(ask)).rejects.toMatchObject({ status: 400 });
    failWith(529, 'overloaded_error');
    await expect(client(planOnly).messages.create(ask)).rejects.toMatchObject({ status: 529 });
    const before = anthropic.requests.length;
    const message = await client(bedrockOnly).messages.create({
      ...ask,
      messages: [{ role: 'user', content: 'hello' }],
    });
    anthropic.respondWith(undefined);
    expect(message.content).toEqual([{ type: 'text', text: 'Hello from the Bedrock test server' }]);
    expect(anthropic.requests.length).toBe(before);
    const count = await request(`${proxy.url}/ak/${bedrockOnly}/v1/messages/count_tokens?beta=true`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(300) }] }),
    });
    expect(await count.body.json()).toEqual({ input_tokens: expect.any(Number) });
  });

  it.each([
    [
      'an exception frame',
      { exception: 'throttlingException', message: 'Too many tokens, please wait' },
      /rate_limit_error/,
    ],
    ['a reset connection', 'reset' as const, /api_error/],
  ])('mid-stream on Bedrock, %s ends the stream with an error the SDK surfaces', async (_name, then, pattern) => {
    const bedrockOnly = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
    bedrockServer.respondWith(() => ({ kind: 'broken', content: [{ text: 'partial answer' }], afterFrames: 2, then }));
    const error = await client(bedrockOnly)
      .messages.stream({ ...ask, messages: [{ role: 'user', content: 'hello' }] })
      .finalMessage()
      .catch((e: unknown) => e);
    bedrockServer.respondWith(undefined);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(String((error as Error).message)).toMatch(pattern);
  });

  it('mid-stream on Bedrock, a stalled upstream ends the stream with a timeout error instead of hanging', async () => {
    const impatient = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
      CCPROXY_UPSTREAM_BODY_TIMEOUT_MS: '400',
    });
    try {
      const bedrockOnly = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
      bedrockServer.respondWith(() => ({
        kind: 'broken',
        content: [{ text: 'partial answer' }],
        afterFrames: 2,
        then: 'stall',
      }));
      const error = await new Anthropic({
        baseURL: `${impatient.url}/ak/${bedrockOnly}`,
        apiKey: 'k',
        maxRetries: 0,
      }).messages
        .stream({ ...ask, messages: [{ role: 'user', content: 'hello' }] })
        .finalMessage()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(String((error as Error).message)).toMatch(/timeout_error/);
    } finally {
      bedrockServer.respondWith(undefined);
      await impatient.close();
    }
  });

  it('count_tokens on Bedrock asks CountTokens with the foundation model id, and over-estimates when it cannot', async () => {
    const bedrockOnly = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
    const params = {
      model: 'claude-test-model',
      messages: [{ role: 'user' as const, content: 'count these words please' }],
    };
    const counted = await client(bedrockOnly).messages.countTokens(params);
    const recorded = bedrockServer.requests.at(-1);
    expect(recorded?.path).toBe(
      `/model/${encodeURIComponent('anthropic.claude-sonnet-4-5-20250929-v1:0')}/count-tokens`,
    );
    expect(counted.input_tokens).toBe(Math.ceil(JSON.stringify(recorded?.body.input).length / 4));
    bedrockServer.respondWith(() => ({
      kind: 'error',
      status: 400,
      name: 'ValidationException',
      message: "The provided model doesn't support counting tokens.",
    }));
    const estimated = await client(bedrockOnly).messages.countTokens(params);
    bedrockServer.respondWith(undefined);
    expect(estimated.input_tokens).toBeGreaterThan(counted.input_tokens);
  });

  it('maps Bedrock errors: context overflow reads "prompt is too long"; a bad Bedrock key is not a 401', async () => {
    const bedrockOnly = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
    bedrockServer.respondWith(() => ({
      kind: 'error',
      status: 400,
      name: 'ValidationException',
      message: 'Input is too long for requested model.',
    }));
    await expect(client(bedrockOnly).messages.create(ask)).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/prompt is too long/),
    });
    bedrockServer.respondWith(undefined);
    const wrongKey = (
      await seedKey(db, { routing: 'BedrockOnly', bedrock: { ...bedrock, apiKey: 'not-the-right-key' } })
    ).key;
    const error = await client(wrongKey)
      .messages.create(ask)
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(500);
    expect(String((error as Error).message)).not.toContain('not-the-right-key');
    for (const line of proxy.logs) {
      expect(line).not.toContain(bedrock.apiKey);
      expect(line).not.toContain('not-the-right-key');
    }
  });
});
