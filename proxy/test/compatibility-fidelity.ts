import type Anthropic from '@anthropic-ai/sdk';
import { expect } from 'vitest';
import type { BedrockReply, BedrockTestServer, Reply } from '@ccproxy/test-harness';

/**
 * Compatibility rows for what Converse used to lose (issue 23, item 2): citations, structured
 * output, search results and automatic prompt caching. Each test server answers the feature only
 * when the request really carried it (the Bedrock one: in Converse's own shape, checked against
 * the Smithy model; over InvokeModel in the native body Bedrock's Claude takes), so a row passes
 * only if the feature reached the model and came back whole.
 */
interface Scenario {
  name: string;
  anthropic?: (body: { messages?: Array<{ content: unknown }>; [field: string]: unknown }) => Reply | undefined;
  bedrock?: (body: Record<string, unknown>) => BedrockReply | undefined;
  /** Bedrock InvokeModel: the native body must carry the feature as Anthropic's does; answered in Anthropic's shape. */
  invoke?: (body: Record<string, unknown>) => BedrockReply | undefined;
  run(client: Anthropic, backend: string, servers: { bedrock: BedrockTestServer }): Promise<void>;
}

const model = 'claude-test-model';
const json = (value: unknown) => JSON.stringify(value ?? null);
const lastMessage = (body: Record<string, unknown>) => (body.messages as Array<{ content: unknown[] }>).at(-1);

/** Both spellings of the same cited answer: Anthropic's, and Converse's that the proxy maps to it. */
function citedAnswer(anthropicCitation: Record<string, unknown>, converseCitation: Record<string, unknown>) {
  return {
    anthropic: {
      kind: 'message',
      content: [
        { type: 'text', text: 'The answer: ' },
        { type: 'text', text: 'it is so', citations: [anthropicCitation] },
        { type: 'text', text: '.' },
      ],
    } as Reply,
    bedrock: {
      kind: 'scripted',
      content: [
        { text: 'The answer: ' },
        { citationsContent: { content: [{ text: 'it is so' }], citations: [converseCitation] } },
        { text: '.' },
      ],
    } as BedrockReply,
    invoke: {
      kind: 'anthropic',
      content: [
        { type: 'text', text: 'The answer: ' },
        { type: 'text', text: 'it is so', citations: [anthropicCitation] },
        { type: 'text', text: '.' },
      ],
    } as BedrockReply,
    expected: [
      { type: 'text', text: 'The answer: ' },
      { type: 'text', text: 'it is so', citations: [anthropicCitation] },
      { type: 'text', text: '.' },
    ],
  };
}

const documentCited = citedAnswer(
  {
    type: 'char_location',
    cited_text: 'The grass is green.',
    document_index: 0,
    document_title: 'Facts',
    start_char_index: 0,
    end_char_index: 19,
    file_id: null,
  },
  {
    title: 'Facts',
    sourceContent: [{ text: 'The grass is green.' }],
    location: { documentChar: { documentIndex: 0, start: 0, end: 19 } },
  },
);

const searchCited = citedAnswer(
  {
    type: 'search_result_location',
    cited_text: 'The sky is blue.',
    search_result_index: 0,
    source: 'https://example.com/sky',
    title: 'Sky facts',
    start_block_index: 0,
    end_block_index: 1,
  },
  {
    title: 'Sky facts',
    source: 'https://example.com/sky',
    sourceContent: [{ text: 'The sky is blue.' }],
    location: { searchResultLocation: { searchResultIndex: 0, start: 0, end: 1 } },
  },
);

const searchResult: Anthropic.SearchResultBlockParam = {
  type: 'search_result',
  source: 'https://example.com/sky',
  title: 'Sky facts',
  content: [{ type: 'text', text: 'The sky is blue.' }],
  citations: { enabled: true },
};

const schema = {
  type: 'object',
  properties: { name: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
};

const ask = (content: Anthropic.MessageParam['content']) => ({
  model,
  max_tokens: 1024,
  messages: [{ role: 'user' as const, content }],
});

/** The same request, answered whole and streamed (assembled by the SDK): both must match. */
async function bothWays(client: Anthropic, params: Anthropic.MessageCreateParamsNonStreaming) {
  return [await client.messages.create(params), await client.messages.stream(params).finalMessage()];
}

export const fidelityScenarios: Scenario[] = [
  {
    name: 'citations on documents (JSON and streaming)',
    anthropic: (body) =>
      json(body.messages).includes('"citations":{"enabled":true}') ? documentCited.anthropic : undefined,
    bedrock: (body) =>
      json(body.messages).includes('"citations":{"enabled":true}') ? documentCited.bedrock : undefined,
    invoke: (body) => (json(body.messages).includes('"citations":{"enabled":true}') ? documentCited.invoke : undefined),
    async run(client) {
      const params = ask([
        {
          type: 'document',
          source: { type: 'text', media_type: 'text/plain', data: 'The grass is green.' },
          title: 'Facts',
          citations: { enabled: true },
        },
        { type: 'text', text: 'What colour is the grass?' },
      ]);
      for (const message of await bothWays(client, params)) expect(message.content).toEqual(documentCited.expected);
    },
  },
  {
    name: 'structured output (output_config.format)',
    anthropic: (body) =>
      json((body.output_config as { format?: unknown } | undefined)?.format) === json({ type: 'json_schema', schema })
        ? { kind: 'message', content: [{ type: 'text', text: '{"name":"Ada"}' }] }
        : undefined,
    bedrock: (body) =>
      json(body.outputConfig) ===
      json({ textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(schema) } } } })
        ? { kind: 'message', content: [{ text: '{"name":"Ada"}' }] }
        : undefined,
    invoke: (body) =>
      json((body.output_config as { format?: unknown } | undefined)?.format) === json({ type: 'json_schema', schema })
        ? { kind: 'anthropic', content: [{ type: 'text', text: '{"name":"Ada"}' }] }
        : undefined,
    async run(client) {
      const params = {
        ...ask('Who wrote the first program?'),
        output_config: { format: { type: 'json_schema' as const, schema } },
      };
      for (const message of await bothWays(client, params)) {
        const text = message.content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
        expect(JSON.parse(text)).toEqual({ name: 'Ada' });
      }
    },
  },
  {
    name: 'search results, in a message and in a tool result, with citations',
    anthropic: (body) => (json(body.messages).includes('"type":"search_result"') ? searchCited.anthropic : undefined),
    bedrock: (body) =>
      json(body.messages).includes('"searchResult":{"source":"https://example.com/sky"')
        ? searchCited.bedrock
        : undefined,
    invoke: (body) => (json(body.messages).includes('"type":"search_result"') ? searchCited.invoke : undefined),
    async run(client) {
      for (const message of await bothWays(client, ask([searchResult, { type: 'text', text: 'Why is the sky blue?' }])))
        expect(message.content).toEqual(searchCited.expected);
      const tools = [
        { name: 'search', description: 'Search', input_schema: { type: 'object' as const, properties: {} } },
      ];
      const answer = await client.messages.create({
        ...ask('Why is the sky blue?'),
        tools,
        messages: [
          { role: 'user', content: 'Why is the sky blue?' },
          {
            role: 'assistant',
            content: [{ type: 'tool_use', id: 'toolu_search', name: 'search', input: { q: 'sky' } }],
          },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_search', content: [searchResult] }] },
        ],
      });
      expect(answer.content).toEqual(searchCited.expected);
    },
  },
  {
    name: 'automatic prompt caching (top-level cache_control)',
    anthropic: (body) =>
      body.cache_control === undefined
        ? undefined
        : {
            kind: 'message',
            content: [{ type: 'text', text: 'cached' }],
            usage: { cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
          },
    bedrock: (body) =>
      json(lastMessage(body)?.content.at(-1)) === json({ cachePoint: { type: 'default' } })
        ? {
            kind: 'message',
            content: [{ text: 'cached' }],
            usage: { cacheReadInputTokens: 100, cacheWriteInputTokens: 20 },
          }
        : undefined,
    // InvokeModel's body has no top-level cache_control: the breakpoint is on the last block, as Anthropic places it.
    invoke: (body) =>
      body.cache_control === undefined &&
      json(lastMessage(body)?.content.at(-1)) ===
        json({ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } })
        ? {
            kind: 'anthropic',
            content: [{ type: 'text', text: 'cached' }],
            usage: { cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
          }
        : undefined,
    async run(client) {
      const params = { ...ask('hi'), cache_control: { type: 'ephemeral' as const } };
      for (const message of await bothWays(client, params))
        expect(message.usage).toMatchObject({ cache_read_input_tokens: 100, cache_creation_input_tokens: 20 });
    },
  },
];
