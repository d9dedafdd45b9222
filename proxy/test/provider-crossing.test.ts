import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { toAnthropicToolUseId } from '../src/adapters/bedrock/provenance.ts';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const anthropicToolUseId = /^[a-zA-Z0-9_-]+$/;
const bedrock = { apiKey: 'bedrock-crossing-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };

interface Block {
  type: string;
  id?: string;
  tool_use_id?: string;
  signature?: string;
  data?: string;
  [field: string]: unknown;
}
interface Body {
  messages: Array<{ role: string; content: Block[] | string }>;
  thinking?: { type: string };
}
const blocksOf = (body: Body) =>
  body.messages.flatMap((message) => (Array.isArray(message.content) ? message.content : []));

describe('what crosses providers (pure)', () => {
  it('Bedrock tool ids become Anthropic-valid, deterministically; valid ones stay', () => {
    for (const id of ['tooluse_abc.def:1', 'a.b', 'x:y:z', `${'long.'.repeat(30)}`]) {
      expect(toAnthropicToolUseId(id)).toMatch(anthropicToolUseId);
      expect(toAnthropicToolUseId(id)).toBe(toAnthropicToolUseId(id));
      expect(toAnthropicToolUseId(id).length).toBeLessThanOrEqual(64);
    }
    expect(toAnthropicToolUseId('tooluse_Ab-9')).toBe('tooluse_Ab-9');
  });
});

/** A session that failed over with a tool call comes back to Plan with it. */
describe('a session crossing providers with tool use', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let proxy: RunningProxy;

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

  const post = async (key: string, body: object) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'x-api-key': 'sk-ant-x', 'x-claude-code-session-id': 'crossing', 'content-type': 'application/json' },
    });
    return { status: response.status, text: await response.text() };
  };

  it('returns to Plan with tool ids Anthropic accepts, for the tool_use and its tool_result alike', async () => {
    const { key } = await seedKey(db, { bedrock });
    const user = { role: 'user', content: 'RUN_BASH:ls' };
    anthropic.respondWith(() => ({
      kind: 'error',
      status: 429,
      type: 'rate_limit_error',
      message: 'slow down',
      headers: { 'retry-after': '1' },
    }));
    bedrockServer.respondWith(() => ({
      kind: 'message',
      stopReason: 'tool_use',
      content: [{ toolUse: { toolUseId: 'tooluse_abc.def:1', name: 'Bash', input: { command: 'ls' } } }],
    }));
    for (const stream of [false, true]) {
      const first = await post(key, { model: 'claude-sonnet-4-5', max_tokens: 256, stream, messages: [user] });
      expect(first.status).toBe(200);
      expect(first.text).not.toContain('tooluse_abc.def:1');
      expect(first.text).toContain(toAnthropicToolUseId('tooluse_abc.def:1'));
    }
    anthropic.respondWith(undefined);
    bedrockServer.respondWith(undefined);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const id = toAnthropicToolUseId('tooluse_abc.def:1');
    const history = [
      user,
      { role: 'assistant', content: [{ type: 'tool_use', id, name: 'Bash', input: { command: 'ls' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'a b c' }] },
    ];
    const seen = anthropic.requests.length;
    expect((await post(key, { model: 'claude-sonnet-4-5', max_tokens: 256, messages: history })).status).toBe(200);
    const toPlan = JSON.parse(anthropic.requests[seen]?.body.toString() ?? '{}') as Body;
    const ids = blocksOf(toPlan).flatMap((block) => [block.id, block.tool_use_id].filter((v) => v !== undefined));
    expect(ids).toEqual([id, id]);
    for (const each of ids) expect(each).toMatch(anthropicToolUseId);
  });
});
