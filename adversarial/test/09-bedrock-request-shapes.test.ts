import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startBedrockServer, type BedrockTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';

const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/** A request shaped like Claude Code's, with every kind of block the Bedrock translation reads. */
function claudeCodeRequest(): Record<string, unknown> {
  return {
    model: 'claude-sonnet-4-5-20250929',
    max_tokens: 32000,
    stream: true,
    temperature: 1,
    system: [
      { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
      { type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } },
    ],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: '<system-reminder>context</system-reminder>' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'notes' }, title: 'notes' },
          { type: 'text', text: 'List the files', cache_control: { type: 'ephemeral', ttl: '5m' } },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'I should run ls.', signature: 'sig-abc' },
          { type: 'text', text: 'Running ls.' },
          { type: 'tool_use', id: 'toolu_01', name: 'Bash', input: { command: 'ls', description: 'List' } },
          { type: 'tool_use', id: 'toolu_02', name: 'Read', input: { path: 'a.txt' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_01', content: [{ type: 'text', text: 'a.txt\nb.txt' }] },
          { type: 'tool_result', tool_use_id: 'toolu_02', content: 'plain', is_error: true },
        ],
      },
      { role: 'assistant', content: 'Two files.' },
      { role: 'user', content: 'Thanks' },
    ],
    tools: [
      {
        name: 'Bash',
        description: 'Runs a command',
        input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
      },
      { name: 'web_search', type: 'web_search_20250305', max_uses: 5 },
      {
        name: 'Read',
        description: 'Reads a file',
        input_schema: { type: 'object', properties: {} },
        cache_control: { type: 'ephemeral' },
      },
    ],
    tool_choice: { type: 'auto' },
    thinking: { type: 'enabled', budget_tokens: 1024 },
    metadata: { user_id: 'user_abc' },
    context_management: { edits: [{ type: 'clear_thinking_20251015' }] },
    output_config: { effort: 'high' },
  };
}

type Path = Array<string | number>;

/** Every path to a value in `value` (objects and arrays included), depth first. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((item, index) => out.push(...pathsOf(item, [...prefix, index])));
  else if (typeof value === 'object' && value !== null)
    for (const [key, item] of Object.entries(value)) out.push(...pathsOf(item, [...prefix, key]));
  return out;
}

function nested(depth: number): unknown {
  let value: unknown = 'x';
  for (let i = 0; i < depth; i += 1) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** The wrong values tried at every path. */
const mutations: Array<[string, () => unknown]> = [
  ['null', () => null],
  ['zero', () => 0],
  ['negative', () => -1],
  ['fraction', () => 1.5],
  ['huge number', () => 1e308],
  ['true', () => true],
  ['empty string', () => ''],
  ['string', () => 'x'],
  ['control characters', () => '\u0000\u0007\u001b[31m\r\n\u2028'],
  ['empty array', () => []],
  ['array of null', () => [null]],
  ['array of numbers', () => [1, 2]],
  ['empty object', () => ({})],
  ['object with a wrong type', () => ({ type: 5, text: 7, source: null })],
  ['deep nesting', () => nested(800)],
];

function mutate(base: Record<string, unknown>, path: Path, value: unknown | undefined): Record<string, unknown> {
  const copy = structuredClone(base);
  if (path.length === 0) return copy;
  let parent: Record<string | number, unknown> = copy;
  for (const segment of path.slice(0, -1)) parent = parent[segment] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else Reflect.deleteProperty(parent, last);
  } else parent[last] = value;
  return copy;
}

/** A 400's message names the field at fault: `a.b.0.c: …` starting at a top-level field. */
const namesAField = /^(\(body\)|[a-z_]+(\.[\w-]+)*): \S/;

/**
 * Finding 9: wrongly shaped but valid JSON on the Bedrock path. Every field of a Claude-Code-like
 * request is replaced by every kind of wrong value (and removed), against a real proxy whose key
 * is BedrockOnly and the strict Bedrock test server: never a 5xx, and every 400 of the proxy's
 * own names the field.
 */
describe('09 Bedrock request shapes', () => {
  let db: Database;
  let bedrock: BedrockTestServer;
  let proxy: RunningProxy;
  let key: string;
  const apiKey = 'bedrock-09-key';

  beforeAll(async () => {
    db = await openTestDatabase();
    bedrock = await startBedrockServer({ apiKey });
    proxy = await startProxy(db, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url });
    ({ key } = await seedKey(db, {
      routing: 'BedrockOnly',
      bedrock: { apiKey, model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' },
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await bedrock?.close();
    await db?.close();
  });

  async function send(path: string, body: unknown) {
    const response = await request(`${proxy.url}/ak/${key}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-beta': 'interleaved-thinking-2025-05-14' },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    return { status: response.statusCode, text, id: response.headers['x-ccproxy-request-id'] as string };
  }

  it('the unmutated request is served', async () => {
    expect((await send('/v1/messages', claudeCodeRequest())).status).toBe(200);
    expect((await send('/v1/messages/count_tokens', claudeCodeRequest())).status).toBe(200);
  });

  it.each([
    [{ content: null }, 'messages.0.content: Expected array or string'],
    [{ system: 5 }, 'system: Expected array or string'],
    [{ tools: [null] }, 'tools.0: Expected object'],
    [{ image: null }, 'messages.0.content.0.source: Expected object'],
  ])('the examples of the finding: %j → 400 %s', async (change, message) => {
    const body: Record<string, unknown> = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };
    if ('content' in change) body.messages = [{ role: 'user', content: null }];
    if ('system' in change) body.system = 5;
    if ('tools' in change) body.tools = [null];
    if ('image' in change) body.messages = [{ role: 'user', content: [{ type: 'image', source: null }] }];
    for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
      const { status, text } = await send(path, body);
      expect(status, path).toBe(400);
      expect(JSON.parse(text)).toEqual({
        type: 'error',
        error: { type: 'invalid_request_error', message },
        request_id: expect.any(String),
      });
    }
  });

  it('no mutation of any field, on messages or count_tokens, gets a 5xx; every 400 of the proxy names the field', async () => {
    const base = claudeCodeRequest();
    const cases: Array<{ label: string; body: unknown; path: string }> = [];
    for (const path of pathsOf(base)) {
      const label = path.join('.') || '(body)';
      for (const [name, make] of mutations)
        cases.push({ label: `${label} = ${name}`, body: mutate(base, path, make()), path: '/v1/messages' });
      if (path.length > 0)
        cases.push({ label: `${label} removed`, body: mutate(base, path, undefined), path: '/v1/messages' });
      // count_tokens reads the same body: a sample of the same mutations there.
      cases.push({
        label: `count_tokens ${label} = null`,
        body: mutate(base, path, null),
        path: '/v1/messages/count_tokens',
      });
    }
    cases.push({ label: 'huge string', body: { ...base, system: 'x'.repeat(2_000_000) }, path: '/v1/messages' });
    const failures: string[] = [];
    const refusedByBedrock: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < cases.length; index = next++) {
        const c = cases[index] as (typeof cases)[number];
        const { status, text, id } = await send(c.path, c.body);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) failures.push(`${c.label}: ${status} ${text.slice(0, 200)}`);
        if (status === 400) {
          const message = (JSON.parse(text) as { error: { message: string } }).error.message;
          // Bedrock's own refusals pass through with Bedrock's wording; the proxy's name the Anthropic field.
          const line = proxy.logs.find((l) => l.includes(id) && l.includes('request failed')) ?? '';
          if (line.includes('PRX_BEDROCK_INVALID_REQUEST')) refusedByBedrock.push(`${c.label}: ${message}`);
          else if (!namesAField.test(message)) failures.push(`${c.label}: 400 without a field: ${message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(failures).toEqual([]);
    // What the schema lets through and Bedrock refuses: values Anthropic takes but Bedrock does not.
    expect(refusedByBedrock.length, refusedByBedrock.join('\n')).toBeLessThan(cases.length / 20);
    expect(cases.length).toBeGreaterThan(1000);
    // Most mutations are refused by the proxy itself, before Bedrock is asked.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(cases.length / 2);
    for (const line of proxy.logs) expect(line).not.toContain(key);
  });
});
