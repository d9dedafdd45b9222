import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockReply,
  type BedrockTestServer,
  type Reply,
  writeDocSection,
} from '@ccproxy/test-harness';
import { fidelityScenarios } from './compatibility-fidelity.ts';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/**
 * The compatibility table in docs/compatibility.md is written by this run: every scenario runs
 * through the proxy with the official SDK on each backend (Plan → Anthropic test server;
 * Bedrock → strict Bedrock test server) and its cell is the test's own outcome.
 */
type Backend = 'Plan' | 'Bedrock Converse' | 'Bedrock InvokeModel';
const backends: Backend[] = ['Plan', 'Bedrock Converse', 'Bedrock InvokeModel'];
/** The operations each Bedrock backend may use: the key's `bedrock.api` must decide, never silently. */
const operations: Partial<Record<Backend, string[]>> = {
  'Bedrock Converse': ['Converse', 'ConverseStream', 'CountTokens'],
  'Bedrock InvokeModel': ['InvokeModel', 'InvokeModelWithResponseStream', 'CountTokens'],
};
const results = new Map<string, Map<Backend, string>>();
const tableFile = fileURLToPath(new URL('../../docs/compatibility.md', import.meta.url));

interface Scenario {
  name: string;
  anthropic?: (body: { messages?: Array<{ content: unknown }> }) => Reply | undefined;
  bedrock?: (body: Record<string, unknown>) => BedrockReply | undefined;
  /** The same answer judged on an InvokeModel body (the native Anthropic request); `bedrock` when absent. */
  invoke?: (body: Record<string, unknown>) => BedrockReply | undefined;
  run(client: Anthropic, backend: Backend, servers: { bedrock: BedrockTestServer }): Promise<void>;
}

const model = 'claude-test-model';
const text = (message: Anthropic.Message) =>
  message.content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
const lastUserJson = (body: { messages?: Array<{ content: unknown }> }) =>
  JSON.stringify(body.messages?.at(-1)?.content ?? '');
const ask = (
  content: Anthropic.MessageParam['content'],
  extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {},
): Anthropic.MessageCreateParamsNonStreaming => ({
  model,
  max_tokens: 2048,
  messages: [{ role: 'user', content }],
  ...extra,
});
const thinkingReply = {
  anthropic: {
    kind: 'message',
    content: [
      { type: 'thinking', thinking: 'Considering it.', signature: 'sig-abc' },
      { type: 'text', text: 'Thought it through.' },
    ],
  } as Reply,
  bedrock: {
    kind: 'message',
    content: [
      { reasoningContent: { reasoningText: { text: 'Considering it.', signature: 'sig-abc' } } },
      { text: 'Thought it through.' },
    ],
  } as BedrockReply,
};

function thinkingScenario(name: string, thinking: Anthropic.ThinkingConfigParam): Scenario {
  return {
    name,
    anthropic: () => thinkingReply.anthropic,
    bedrock: () => thinkingReply.bedrock,
    async run(client) {
      const first = await client.messages.stream({ ...ask('think'), thinking }).finalMessage();
      expect(first.content[0]).toEqual({ type: 'thinking', thinking: 'Considering it.', signature: 'sig-abc' });
      const second = await client.messages.create({
        ...ask('think'),
        thinking,
        messages: [
          { role: 'user', content: 'think' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: 'and again' },
        ],
      });
      expect(text(second)).toBe('Thought it through.');
    },
  };
}

const scenarios: Scenario[] = [
  {
    name: 'text',
    async run(client) {
      expect(text(await client.messages.create(ask('hi')))).toMatch(/^Hello from the/);
    },
  },
  {
    name: 'streaming',
    async run(client) {
      expect(text(await client.messages.stream(ask('hi')).finalMessage())).toMatch(/^Hello from the/);
    },
  },
  {
    name: 'tool round trip',
    async run(client) {
      const first = await client.messages.create(ask('RUN_BASH:echo 7'));
      const call = first.content.find((block) => block.type === 'tool_use');
      expect(call).toMatchObject({ name: 'Bash', input: { command: 'echo 7' } });
      const tools = [{ name: 'Bash', description: 'Run', input_schema: { type: 'object' as const, properties: {} } }];
      const second = await client.messages.create({
        ...ask('RUN_BASH:echo 7'),
        tools,
        messages: [
          { role: 'user', content: 'RUN_BASH:echo 7' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call?.id ?? '', content: '7' }] },
        ],
      });
      expect(text(second)).toBe('Tool said: 7');
    },
  },
  {
    name: 'parallel tool calls',
    anthropic: () => ({
      kind: 'message',
      content: [
        { type: 'tool_use', id: 'toolu_a', name: 'Read', input: { path: 'a' } },
        { type: 'tool_use', id: 'toolu_b', name: 'Read', input: { path: 'b' } },
      ],
    }),
    bedrock: (body) =>
      (body.messages as unknown[]).length > 1
        ? undefined
        : {
            kind: 'message',
            content: [
              { toolUse: { toolUseId: 'tooluse_a', name: 'Read', input: { path: 'a' } } },
              { toolUse: { toolUseId: 'tooluse_b', name: 'Read', input: { path: 'b' } } },
            ],
          },
    invoke: (body) =>
      (body.messages as unknown[]).length > 1
        ? { kind: 'message', content: [{ text: 'read both files' }] }
        : {
            kind: 'message',
            content: [
              { toolUse: { toolUseId: 'toolu_bdrk_a', name: 'Read', input: { path: 'a' } } },
              { toolUse: { toolUseId: 'toolu_bdrk_b', name: 'Read', input: { path: 'b' } } },
            ],
          },
    async run(client) {
      const tools = [{ name: 'Read', description: 'Read', input_schema: { type: 'object' as const, properties: {} } }];
      const first = await client.messages.stream({ ...ask('read both'), tools }).finalMessage();
      const calls = first.content.filter((block) => block.type === 'tool_use');
      expect(calls.map((call) => call.input)).toEqual([{ path: 'a' }, { path: 'b' }]);
      const results = calls.map((call) => ({
        type: 'tool_result' as const,
        tool_use_id: call.id,
        content: `content of ${(call.input as { path: string }).path}`,
      }));
      const answer = await client.messages.create({
        ...ask('read both'),
        tools,
        messages: [
          { role: 'user', content: 'read both' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: results },
        ],
      });
      expect(answer.content.length).toBeGreaterThan(0);
    },
  },
  thinkingScenario('thinking (adaptive), signatures across turns', {
    type: 'adaptive',
  } as unknown as Anthropic.ThinkingConfigParam),
  thinkingScenario('thinking (enabled), signatures across turns', { type: 'enabled', budget_tokens: 1024 }),
  {
    name: 'images',
    anthropic: (body) =>
      lastUserJson(body).includes('"image"')
        ? { kind: 'message', content: [{ type: 'text', text: 'saw an image' }] }
        : undefined,
    bedrock: (body) =>
      JSON.stringify(body.messages).includes('"image":{"format":"png"')
        ? { kind: 'message', content: [{ text: 'saw an image' }] }
        : undefined,
    invoke: (body) =>
      JSON.stringify(body.messages).includes('"type":"image","source":{"type":"base64","media_type":"image/png"')
        ? { kind: 'message', content: [{ text: 'saw an image' }] }
        : undefined,
    async run(client) {
      expect(
        text(
          await client.messages.create(
            ask([
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
              { type: 'text', text: 'what is this?' },
            ]),
          ),
        ),
      ).toBe('saw an image');
    },
  },
  {
    name: 'PDF documents',
    anthropic: (body) =>
      lastUserJson(body).includes('"document"')
        ? { kind: 'message', content: [{ type: 'text', text: 'read the PDF' }] }
        : undefined,
    bedrock: (body) =>
      JSON.stringify(body.messages).includes('"document":{"format":"pdf"')
        ? { kind: 'message', content: [{ text: 'read the PDF' }] }
        : undefined,
    invoke: (body) =>
      JSON.stringify(body.messages).includes(
        '"type":"document","source":{"type":"base64","media_type":"application/pdf"',
      )
        ? { kind: 'message', content: [{ text: 'read the PDF' }] }
        : undefined,
    async run(client) {
      expect(
        text(
          await client.messages.create(
            ask([
              {
                type: 'document',
                source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQK' },
                title: 'report.pdf',
              },
              { type: 'text', text: 'summarize' },
            ]),
          ),
        ),
      ).toBe('read the PDF');
    },
  },
  {
    name: 'prompt caching',
    anthropic: () => ({
      kind: 'message',
      content: [{ type: 'text', text: 'cached' }],
      usage: { cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
    }),
    bedrock: (body) =>
      JSON.stringify(body).includes('"cachePoint"')
        ? {
            kind: 'message',
            content: [{ text: 'cached' }],
            usage: { cacheReadInputTokens: 100, cacheWriteInputTokens: 20 },
          }
        : undefined,
    invoke: (body) =>
      JSON.stringify(body.system).includes('"cache_control":{"type":"ephemeral"}')
        ? {
            kind: 'message',
            content: [{ text: 'cached' }],
            usage: { cacheReadInputTokens: 100, cacheWriteInputTokens: 20 },
          }
        : undefined,
    async run(client) {
      const message = await client.messages
        .stream(
          ask('hi', {
            system: [{ type: 'text', text: 'Long stable instructions', cache_control: { type: 'ephemeral' } }],
          }),
        )
        .finalMessage();
      expect(message.usage).toMatchObject({ cache_read_input_tokens: 100, cache_creation_input_tokens: 20 });
    },
  },
  {
    name: 'count_tokens',
    async run(client) {
      expect(
        (await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'count me' }] })).input_tokens,
      ).toBeGreaterThan(0);
    },
  },
  {
    name: 'long-context error reads "prompt is too long"',
    anthropic: () => ({
      kind: 'error',
      status: 400,
      type: 'invalid_request_error',
      message: 'prompt is too long: 210000 tokens > 200000 maximum',
    }),
    bedrock: () => ({
      kind: 'error',
      status: 400,
      name: 'ValidationException',
      message: 'Input is too long for requested model.',
    }),
    // Over InvokeModel the model's own words come through behind Bedrock's prefix.
    invoke: () => ({
      kind: 'error',
      status: 400,
      name: 'ValidationException',
      message: 'The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum',
    }),
    async run(client) {
      await expect(client.messages.create(ask('huge'))).rejects.toMatchObject({
        status: 400,
        error: { error: { type: 'invalid_request_error', message: expect.stringMatching(/^prompt is too long/) } },
      });
    },
  },
  {
    name: '429 → rate_limit_error',
    anthropic: () => ({ kind: 'error', status: 429, type: 'rate_limit_error', message: 'slow down' }),
    bedrock: () => ({
      kind: 'error',
      status: 429,
      name: 'ThrottlingException',
      message: 'Too many requests, please wait before trying again.',
    }),
    async run(client) {
      await expect(client.messages.create(ask('x'))).rejects.toMatchObject({
        status: 429,
        error: { error: { type: 'rate_limit_error' } },
      });
    },
  },
  {
    name: '529 → overloaded_error',
    anthropic: () => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }),
    bedrock: () => ({
      kind: 'error',
      status: 503,
      name: 'ServiceUnavailableException',
      message: 'Service unavailable',
    }),
    async run(client) {
      await expect(client.messages.create(ask('x'))).rejects.toMatchObject({
        status: 529,
        error: { error: { type: 'overloaded_error' } },
      });
    },
  },
  ...fidelityScenarios,
];

describe('compatibility: scenario × backend', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let proxy: RunningProxy;
  const clients = new Map<Backend, Anthropic>();

  beforeAll(async () => {
    db = await openTestDatabase();
    anthropic = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: 'compat-bedrock-key' });
    proxy = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    });
    const bedrockKey = { apiKey: 'compat-bedrock-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };
    for (const [backend, routing, api] of [
      ['Plan', 'PlanOnly', 'Converse'],
      ['Bedrock Converse', 'BedrockOnly', 'Converse'],
      ['Bedrock InvokeModel', 'BedrockOnly', 'InvokeModel'],
    ] as const) {
      const { key } = await seedKey(db, { routing, bedrock: { ...bedrockKey, api } });
      clients.set(backend, new Anthropic({ baseURL: `${proxy.url}/ak/${key}`, apiKey: 'sk-ant-dev', maxRetries: 0 }));
    }
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await db?.close();
    // A filtered run (vitest -t) must not overwrite the table with gaps.
    if ([...results.values()].reduce((n, row) => n + row.size, 0) < scenarios.length * backends.length) return;
    const rows = [...results].map(
      ([name, cells]) => `| ${name} | ${backends.map((backend) => cells.get(backend) ?? 'not run').join(' | ')} |`,
    );
    const table = [
      `| scenario | ${backends.join(' | ')} |`,
      `|---|${backends.map(() => '---').join('|')}|`,
      ...rows,
    ].join('\n');
    // Its own section: the real-binary matrix (claude-code-matrix.test.ts) writes another one of the same file.
    await writeDocSection(
      tableFile,
      'sdk',
      `## With the official Anthropic SDK\n\nGenerated by \`proxy/test/compatibility.test.ts\` on every \`npm test\` (last written ${new Date().toISOString().slice(0, 10)}): each scenario goes through the proxy with the official Anthropic SDK, to the Anthropic test server (Plan) or the strict Bedrock test server (Bedrock Converse, Bedrock InvokeModel: an access key's \`spec.bedrock.api\`; the run checks which operation the server saw).\n\n${table}\n\nOn Bedrock, count_tokens asks Bedrock's CountTokens API (foundation model id); where the model cannot count, it answers with a deliberate over-estimate (request bytes / 3). On Converse, citations, structured output (\`output_config.format\` → \`outputConfig.textFormat\`), search results and automatic prompt caching (top-level \`cache_control\` → a cache point after the last message) are translated; a Converse block or delta the proxy does not know is skipped and logged, never an error; server tools (web search, …), \`tool_choice: none\`, \`context_management\` and \`metadata.user_id\` cannot be expressed in Converse and are left out (logged per request). On InvokeModel the Anthropic body travels as it is, without \`model\`/\`stream\` (in the path), with \`anthropic_version: bedrock-2023-05-31\`, the betas Bedrock accepts as \`anthropic_beta\`, top-level \`cache_control\` as a breakpoint on the last message's last block (where Anthropic puts it), and without the fields and server tools Bedrock refuses (logged per request); the answer (citations, cache usage, thinking signatures) comes back as Bedrock's model wrote it, named with the model the client asked for.`,
    );
  });

  for (const scenario of scenarios) {
    for (const backend of backends) {
      it(`${scenario.name} — ${backend}`, async () => {
        const row = results.get(scenario.name) ?? new Map<Backend, string>();
        results.set(scenario.name, row);
        row.set(backend, 'FAIL');
        anthropic.respondWith(scenario.anthropic === undefined ? undefined : (body) => scenario.anthropic?.(body));
        bedrock.respondWith((body, request) =>
          (request.operation.startsWith('InvokeModel') ? (scenario.invoke ?? scenario.bedrock) : scenario.bedrock)?.(
            body,
          ),
        );
        const before = bedrock.requests.length;
        try {
          await scenario.run(clients.get(backend) as Anthropic, backend, { bedrock });
        } finally {
          anthropic.respondWith(undefined);
          bedrock.respondWith(undefined);
        }
        const used = bedrock.requests.slice(before).map((request) => request.operation);
        if (backend === 'Plan') expect(used).toEqual([]);
        else {
          expect(used.length).toBeGreaterThan(0);
          for (const operation of used) expect(operations[backend]).toContain(operation);
        }
        row.set(backend, 'pass');
      });
    }
  }
});
