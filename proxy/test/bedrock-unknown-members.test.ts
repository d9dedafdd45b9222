import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startBedrockServer, type BedrockTestServer, type ScriptedReply } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/**
 * Through the proxy with the official SDK: a Converse answer holding members the proxy does not
 * know (a newer Bedrock's block, start, delta or event) is a 200 with everything it can translate,
 * never a 5xx, and the request's log line names what was skipped and nothing of its content.
 */
const secret = 'UNKNOWN-BLOCK-CONTENT-NOT-FOR-LOGS';
const reply: ScriptedReply = {
  kind: 'scripted',
  beyondModel: true,
  content: [{ text: 'kept before' }, { hologram: { payload: secret } }, { text: 'kept after' }],
};
const streamed: ScriptedReply = {
  ...reply,
  events: [
    ['messageStart', { role: 'assistant' }],
    ['contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'kept before' } }],
    ['contentBlockStop', { contentBlockIndex: 0 }],
    ['contentBlockStart', { contentBlockIndex: 1, start: { hologram: { payload: secret } } }],
    ['contentBlockDelta', { contentBlockIndex: 1, delta: { hologram: { payload: secret } } }],
    ['contentBlockStop', { contentBlockIndex: 1 }],
    ['futureEvent', { payload: secret }],
    ['contentBlockDelta', { contentBlockIndex: 2, delta: { text: 'kept after' } }],
    ['contentBlockStop', { contentBlockIndex: 2 }],
    ['messageStop', { stopReason: 'end_turn' }],
    ['metadata', { usage: { inputTokens: 5, outputTokens: 6, totalTokens: 11 }, metrics: { latencyMs: 1 } }],
  ],
};

describe('unknown Converse members through the proxy', () => {
  let db: Database;
  let bedrock: BedrockTestServer;
  let proxy: RunningProxy;
  let client: Anthropic;

  beforeAll(async () => {
    db = await openTestDatabase();
    bedrock = await startBedrockServer({ apiKey: 'unknown-members-key' });
    proxy = await startProxy(db, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url });
    const { key } = await seedKey(db, {
      routing: 'BedrockOnly',
      bedrock: { apiKey: 'unknown-members-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' },
    });
    client = new Anthropic({ baseURL: `${proxy.url}/ak/${key}`, apiKey: 'sk-ant-dev', maxRetries: 0 });
  });
  afterAll(async () => {
    await proxy?.close();
    await bedrock?.close();
    await db?.close();
  });

  const params = { model: 'claude-test-model', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };
  const expected = [
    { type: 'text', text: 'kept before' },
    { type: 'text', text: 'kept after' },
  ];

  it('answers JSON with the known blocks and logs the skipped member by name only', async () => {
    bedrock.respondWith(() => reply);
    const message = await client.messages.create(params);
    expect(message.content).toEqual(expected);
    const warnings = proxy.logs.filter((line) => line.includes('"skipped"'));
    expect(warnings.some((line) => line.includes('"skipped":"ContentBlock.hologram"'))).toBe(true);
    expect(proxy.logs.join('\n')).not.toContain(secret);
  });

  it('streams the known blocks to message_stop and logs start, delta and event by name only', async () => {
    bedrock.respondWith(() => streamed);
    const message = await client.messages.stream(params).finalMessage();
    expect(message.content).toEqual(expected);
    expect(message.usage.output_tokens).toBe(6);
    const skipped = proxy.logs.flatMap((line) => /"skipped":"([^"]+)"/.exec(line)?.[1] ?? []);
    expect(skipped).toEqual(
      expect.arrayContaining([
        'ContentBlockStart.hologram',
        'ContentBlockDelta.hologram',
        'ConverseStreamOutput.futureEvent',
      ]),
    );
    expect(proxy.logs.join('\n')).not.toContain(secret);
  });
});
