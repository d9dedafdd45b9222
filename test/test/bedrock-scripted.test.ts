import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  type ConverseStreamOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBedrockServer, type BedrockTestServer, type ScriptedReply } from '@ccproxy/test-harness';

/** Scripted Bedrock answers (citations, members beyond the model) as the official AWS SDK reads them. */
describe('Bedrock test server: scripted replies', () => {
  let server: BedrockTestServer;
  let client: BedrockRuntimeClient;
  const modelId = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const messages = [{ role: 'user' as const, content: [{ text: 'hi' }] }];
  const citation = {
    title: 'Facts',
    sourceContent: [{ text: 'The grass is green.' }],
    location: { documentChar: { documentIndex: 0, start: 0, end: 19 } },
  };
  const cited: ScriptedReply = {
    kind: 'scripted',
    content: [{ text: 'So: ' }, { citationsContent: { content: [{ text: 'green' }], citations: [citation] } }],
  };

  beforeAll(async () => {
    server = await startBedrockServer({ apiKey: 'scripted-key' });
    client = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: server.url,
      token: { token: 'scripted-key' },
      authSchemePreference: ['httpBearerAuth'],
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler(),
    });
  });
  afterAll(async () => {
    client?.destroy();
    await server?.close();
  });

  it('answers Converse with a citationsContent block the SDK parses', async () => {
    server.respondWith(() => cited);
    const response = await client.send(new ConverseCommand({ modelId, messages }));
    expect(response.output?.message?.content).toEqual(cited.content);
  });

  it('streams citation deltas and text under one block index', async () => {
    server.respondWith(() => cited);
    const response = await client.send(new ConverseStreamCommand({ modelId, messages }));
    const events: ConverseStreamOutput[] = [];
    for await (const event of response.stream ?? []) events.push(event);
    const deltas = events.flatMap((event) => (event.contentBlockDelta === undefined ? [] : [event.contentBlockDelta]));
    expect(deltas).toEqual([
      { contentBlockIndex: 0, delta: { text: 'So: ' } },
      { contentBlockIndex: 1, delta: { citation } },
      { contentBlockIndex: 1, delta: { text: 'green' } },
    ]);
  });

  it('refuses a script off the Smithy model unless it says it is beyond it', async () => {
    server.respondWith(() => ({ kind: 'scripted', content: [{ hologram: {} }] }));
    await expect(client.send(new ConverseCommand({ modelId, messages }))).rejects.toMatchObject({
      message: expect.stringMatching(/not what Bedrock can send.*unknown union member hologram/),
    });
    server.respondWith(() => ({ kind: 'scripted', beyondModel: true, content: [{ hologram: {} }] }));
    const response = await client.send(new ConverseCommand({ modelId, messages }));
    // The SDK keeps a member it does not know as $unknown, as a newer Bedrock's would arrive.
    expect(response.output?.message?.content?.[0]).toMatchObject({ $unknown: ['hologram', {}] });
    server.respondWith(undefined);
  });
});
