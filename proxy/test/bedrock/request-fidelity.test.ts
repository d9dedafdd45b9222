import { describe, expect, it } from 'vitest';
import { ProxyError, validateMessagesRequest } from '@ccproxy/core';
import { converseServiceRules, SmithyValidator } from '@ccproxy/test-harness';
import { toConverseRequest } from '../../src/adapters/bedrock/request.ts';
import type { ConverseRequest } from '../../src/adapters/bedrock/converse-types.ts';

/**
 * Request fields Converse can carry and used to lose: structured output, automatic prompt
 * caching, search results, citation switches. Every translation must also pass the strict Smithy
 * model and the service's rules, so what reaches Bedrock is what Bedrock takes.
 */
const validator = new SmithyValidator();

function translate(body: Record<string, unknown>): ConverseRequest {
  const request = validateMessagesRequest({ model: 'm', max_tokens: 100, ...body }, 'messages');
  const { request: converse } = toConverseRequest(request, undefined);
  expect([...validator.validate('ConverseStreamRequest', converse), ...converseServiceRules(converse)]).toEqual([]);
  return converse;
}

function refusal(body: Record<string, unknown>): string {
  try {
    translate(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).code).toBe('PRX_INVALID_REQUEST');
    return (error as ProxyError).message;
  }
  throw new Error('expected a 400');
}

const schema = {
  type: 'object',
  properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['name'],
  additionalProperties: false,
};
const hi = [{ role: 'user', content: 'hi' }];

describe('structured output → outputConfig.textFormat', () => {
  it.each([
    ['output_config.format', { output_config: { effort: 'high', format: { type: 'json_schema', schema } } }],
    ['output_format (beta spelling)', { output_format: { type: 'json_schema', schema } }],
  ])('%s reaches Bedrock as a JSON schema', (_name, fields) => {
    const converse = translate({ messages: hi, ...fields });
    expect(converse.outputConfig).toEqual({
      textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(schema) } } },
    });
  });

  it('keeps effort beside it, and sends nothing for a null format', () => {
    const converse = translate({ messages: hi, output_config: { effort: 'low', format: null } });
    expect(converse.outputConfig).toBeUndefined();
    expect(converse.additionalModelRequestFields).toEqual({ output_config: { effort: 'low' } });
  });

  it.each([
    [{ output_config: { format: { type: 'xml', schema } } }, /output_config\.format/],
    [{ output_config: { format: { type: 'json_schema' } } }, /output_config\.format.*schema/],
    [{ output_config: { format: { type: 'json_schema', schema: 'string' } } }, /output_config\.format\.schema/],
    [{ output_format: { type: 'regex' } }, /output_format/],
  ])('refuses a format it cannot honour with a 400 naming the field (%j)', (fields, message) => {
    expect(refusal({ messages: hi, ...fields })).toMatch(message);
  });
});

const cacheControl = { type: 'ephemeral' };
const cachePoints = (converse: ConverseRequest) => JSON.stringify(converse).split('"cachePoint"').length - 1;
const lastBlock = (converse: ConverseRequest) => converse.messages.at(-1)?.content.at(-1);
const tools = (count: number) =>
  Array.from({ length: count }, (_, n) => ({
    name: `tool_${n}`,
    input_schema: { type: 'object' },
    ...(n === count - 1 ? { cache_control: cacheControl } : {}),
  }));

describe('top-level cache_control → a cache point after the conversation', () => {
  const conversation = [
    { role: 'user', content: [{ type: 'text', text: 'RUN it' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'tool_0', input: {} }] },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'here you go' },
        { type: 'tool_result', tool_use_id: 'toolu_1', content: 'done' },
      ],
    },
  ];
  // Explicit breakpoints in system, tools and messages, 0 to 3 of them: automatic caching adds one.
  const explicit: Array<[name: string, fields: Record<string, unknown>, count: number]> = [
    ['none explicit', {}, 0],
    ['system', { system: [{ type: 'text', text: 'sys', cache_control: cacheControl }] }, 1],
    ['system and tools', { system: [{ type: 'text', text: 'sys', cache_control: cacheControl }], tools: tools(1) }, 2],
    [
      'system, tools and the first message',
      {
        system: [{ type: 'text', text: 'sys', cache_control: cacheControl }],
        tools: tools(1),
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'RUN it', cache_control: cacheControl }] },
          ...conversation.slice(1),
        ],
      },
      3,
    ],
  ];
  for (const [name, fields, count] of explicit)
    it(`adds one after the last message's content (${name})`, () => {
      const body = { messages: conversation, tools: [{ name: 'tool_0', input_schema: { type: 'object' } }], ...fields };
      const without = translate(body);
      expect(cachePoints(without)).toBe(count);
      const converse = translate({ ...body, cache_control: cacheControl });
      expect(cachePoints(converse)).toBe(count + 1);
      expect(lastBlock(converse)).toEqual({ cachePoint: { type: 'default' } });
      // After the tool result that Converse needs first in its turn, and the text after it.
      expect(converse.messages.at(-1)?.content.map((block) => Object.keys(block)[0])).toEqual([
        'toolResult',
        'text',
        'cachePoint',
      ]);
    });

  it('carries the ttl, and is not added twice where the last block already has one', () => {
    const converse = translate({ messages: hi, cache_control: { type: 'ephemeral', ttl: '1h' } });
    expect(lastBlock(converse)).toEqual({ cachePoint: { type: 'default', ttl: '1h' } });
    const marked = translate({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: cacheControl }] }],
      cache_control: cacheControl,
    });
    expect(cachePoints(marked)).toBe(1);
  });

  it('is refused with a 400, not dropped, when 4 explicit breakpoints leave no room', () => {
    const body = {
      system: [{ type: 'text', text: 'sys', cache_control: cacheControl }],
      tools: tools(1),
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'a', cache_control: cacheControl }] },
        { role: 'assistant', content: [{ type: 'text', text: 'b', cache_control: cacheControl }] },
        { role: 'user', content: 'c' },
      ],
    };
    expect(cachePoints(translate(body))).toBe(4);
    expect(refusal({ ...body, cache_control: cacheControl })).toMatch(
      /cache_control: A maximum of 4 blocks with cache_control may be provided\. Found 5/,
    );
  });
});

const searchResult = (extra: Record<string, unknown> = {}) => ({
  type: 'search_result',
  source: 'https://example.com/sky',
  title: 'Sky facts',
  content: [
    { type: 'text', text: 'The sky is blue.' },
    { type: 'text', text: '   ' },
    { type: 'text', text: 'Rayleigh scattering.' },
  ],
  ...extra,
});
const converseSearchResult = (extra: Record<string, unknown> = {}) => ({
  searchResult: {
    source: 'https://example.com/sky',
    title: 'Sky facts',
    content: [{ text: 'The sky is blue.' }, { text: 'Rayleigh scattering.' }],
    ...extra,
  },
});

describe('search_result blocks reach the model', () => {
  it('in a user message, with the citations switch and its cache point', () => {
    const converse = translate({
      messages: [
        {
          role: 'user',
          content: [
            searchResult({ citations: { enabled: true }, cache_control: cacheControl }),
            searchResult({ citations: { enabled: false } }),
            searchResult(),
            { type: 'text', text: 'why is the sky blue?' },
          ],
        },
      ],
    });
    expect(converse.messages[0]?.content).toEqual([
      converseSearchResult({ citations: { enabled: true } }),
      { cachePoint: { type: 'default' } },
      converseSearchResult({ citations: { enabled: false } }),
      converseSearchResult(),
      { text: 'why is the sky blue?' },
    ]);
  });

  it('in a tool result, beside text', () => {
    const converse = translate({
      tools: [{ name: 'search', input_schema: { type: 'object' } }],
      messages: [
        { role: 'user', content: 'search' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_s', name: 'search', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 'toolu_s',
              content: [{ type: 'text', text: 'found:' }, searchResult({ citations: { enabled: true } })],
            },
          ],
        },
      ],
    });
    expect(converse.messages[2]?.content[0]).toEqual({
      toolResult: {
        toolUseId: 'toolu_s',
        content: [{ text: 'found:' }, converseSearchResult({ citations: { enabled: true } })],
        status: 'success',
      },
    });
  });

  it('keeps a blank result in place (citation indices must not shift) and refuses a malformed one', () => {
    const converse = translate({
      messages: [{ role: 'user', content: [searchResult({ content: [{ type: 'text', text: ' ' }] })] }],
    });
    expect(converse.messages[0]?.content[0]).toMatchObject({ searchResult: { content: [{ text: '(empty)' }] } });
    expect(
      refusal({ messages: [{ role: 'user', content: [{ type: 'search_result', source: 's', content: [] }] }] }),
    ).toMatch(/messages\.0\.content\.0.*title/);
  });
});

describe('documents with citations', () => {
  it('carry the citations switch to the Converse document block', () => {
    const converse = translate({
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'document',
              source: { type: 'text', media_type: 'text/plain', data: 'The grass is green.' },
              title: 'Facts',
              citations: { enabled: true },
            },
            { type: 'text', text: 'what colour is the grass?' },
          ],
        },
      ],
    });
    expect(converse.messages[0]?.content[0]).toEqual({
      document: { format: 'txt', name: 'Facts', source: { text: 'The grass is green.' }, citations: { enabled: true } },
    });
  });
});
