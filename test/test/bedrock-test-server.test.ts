import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  type ConverseStreamOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmithyValidator, startBedrockServer, type BedrockTestServer } from '@ccproxy/test-harness';

/** The Bedrock test server driven by the official AWS SDK, so it cannot drift from the real service. */
describe('Bedrock test server, checked with @aws-sdk/client-bedrock-runtime', () => {
  let server: BedrockTestServer;
  let client: BedrockRuntimeClient;
  const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';

  beforeAll(async () => {
    server = await startBedrockServer({ apiKey: 'bedrock-test-key' });
    client = sdk('bedrock-test-key');
  });
  afterAll(async () => {
    client?.destroy();
    await server?.close();
  });

  function sdk(token: string) {
    return new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: server.url,
      token: { token },
      authSchemePreference: ['httpBearerAuth'],
      maxAttempts: 1,
      // The SDK speaks HTTP/2 by default; the test server is HTTP/1.1 like most proxies in between.
      requestHandler: new NodeHttpHandler(),
    });
  }

  it('answers Converse with a response the SDK parses, and records the request', async () => {
    const response = await client.send(
      new ConverseCommand({
        modelId: model,
        messages: [{ role: 'user', content: [{ text: 'hi' }] }],
        inferenceConfig: { maxTokens: 10 },
      }),
    );
    expect(response.output?.message?.content).toEqual([{ text: 'Hello from the Bedrock test server' }]);
    expect(response.stopReason).toBe('end_turn');
    expect(response.usage).toMatchObject({ inputTokens: 30, outputTokens: 15 });
    expect(server.requests.at(-1)).toMatchObject({
      modelId: model,
      headers: { authorization: 'Bearer bedrock-test-key' },
    });
  });

  it('streams ConverseStream events the SDK decodes, tool use included', async () => {
    const response = await client.send(
      new ConverseStreamCommand({
        modelId: model,
        messages: [{ role: 'user', content: [{ text: 'RUN_BASH:echo hi' }] }],
      }),
    );
    const events: ConverseStreamOutput[] = [];
    for await (const event of response.stream ?? []) events.push(event);
    const kinds = events.map((event) => Object.keys(event).find((key) => key !== '$unknown'));
    expect(kinds).toEqual([
      'messageStart',
      'contentBlockStart',
      'contentBlockDelta',
      'contentBlockDelta',
      'contentBlockStop',
      'messageStop',
      'metadata',
    ]);
    const input = events
      .flatMap((event) =>
        event.contentBlockDelta?.delta?.toolUse?.input === undefined
          ? []
          : [event.contentBlockDelta.delta.toolUse.input],
      )
      .join('');
    expect(JSON.parse(input)).toEqual({ command: 'echo hi', description: 'Run the requested command' });
    expect(events.at(-2)?.messageStop?.stopReason).toBe('tool_use');
  });

  it('rejects invalid requests as the service does, and bad keys, and surfaces stream exceptions', async () => {
    await expect(
      client.send(new ConverseCommand({ modelId: model, messages: [{ role: 'user', content: [{ text: '  ' }] }] })),
    ).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringMatching(/non-whitespace/) });
    await expect(
      client.send(new ConverseCommand({ modelId: model, messages: [{ role: 'assistant', content: [{ text: 'x' }] }] })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(
      sdk('wrong').send(
        new ConverseCommand({ modelId: model, messages: [{ role: 'user', content: [{ text: 'x' }] }] }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    server.respondWith(() => ({
      kind: 'broken',
      content: [{ text: 'partial answer' }],
      afterFrames: 2,
      then: { exception: 'throttlingException', message: 'Too many tokens' },
    }));
    const response = await client.send(
      new ConverseStreamCommand({ modelId: model, messages: [{ role: 'user', content: [{ text: 'x' }] }] }),
    );
    const consume = async () => {
      for await (const _event of response.stream ?? []) void _event;
    };
    await expect(consume()).rejects.toMatchObject({ name: 'ThrottlingException', message: 'Too many tokens' });
    server.respondWith(undefined);
  });

  it('validates against the Smithy model: unknown members, unions, patterns, ranges', () => {
    const validator = new SmithyValidator();
    expect(validator.validate('ConverseRequest', { messages: [{ role: 'user', content: [{ text: 'x' }] }] })).toEqual(
      [],
    );
    expect(validator.validate('ConverseRequest', { messages: [], bogus: 1 })).toEqual(['/: unknown member bogus']);
    expect(
      validator.validate('ConverseRequest', {
        messages: [{ role: 'user', content: [{ text: 'x', cachePoint: { type: 'default' } }] }],
      }),
    ).toEqual([expect.stringMatching(/exactly one member/)]);
    expect(validator.validate('ConverseRequest', { messages: [{ role: 'robot', content: [] }] })).toEqual([
      expect.stringMatching(/\/messages\/0\/role: "robot" is not one of/),
    ]);
    expect(
      validator.validate('ConverseRequest', {
        messages: [],
        toolConfig: { tools: [{ toolSpec: { name: 'bad name!', inputSchema: { json: {} } } }] },
      }),
    ).toEqual([expect.stringMatching(/name: does not match/)]);
    expect(
      validator.validate('ConverseRequest', { messages: [], inferenceConfig: { temperature: 1.5, maxTokens: 0 } }),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/maxTokens: must be ≥ 1/)]));
  });
});
