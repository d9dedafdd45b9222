import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';

/** Drives the test server with the official SDK, so it cannot drift from the real wire format. */
describe('Anthropic test server, checked with @anthropic-ai/sdk', () => {
  let server: AnthropicTestServer;
  let client: Anthropic;
  beforeAll(async () => {
    server = await startAnthropicServer();
    client = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-test', maxRetries: 0 });
  });
  afterAll(() => server.close());

  it('answers a non-streaming create with a message the SDK types accept', async () => {
    const message = await client.messages.create({
      model: 'claude-test-model',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-test-model',
      stop_reason: 'end_turn',
      content: [{ type: 'text', text: 'Hello from the test server' }],
    });
    expect(message.usage.input_tokens).toBe(25);
    const recorded = server.requests.at(-1);
    expect(recorded?.path).toBe('/v1/messages');
    // SDK 1.x sends the API key as a Bearer token.
    expect(recorded?.headers.authorization).toBe('Bearer sk-ant-test');
    expect(recorded?.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(JSON.parse(recorded?.body.toString() ?? '')).toEqual({
      model: 'claude-test-model',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
  });

  it('streams text and tool_use (input_json_delta) that the SDK assembles', async () => {
    const text = await client.messages
      .stream({ model: 'm', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    expect(text.content).toEqual([{ type: 'text', text: 'Hello from the test server' }]);
    const tool = await client.messages
      .stream({ model: 'm', max_tokens: 64, messages: [{ role: 'user', content: 'please RUN_BASH:echo 42' }] })
      .finalMessage();
    expect(tool.stop_reason).toBe('tool_use');
    expect(tool.content).toEqual([
      {
        type: 'tool_use',
        id: expect.stringMatching(/^toolu_/),
        name: 'Bash',
        input: { command: 'echo 42', description: 'Run the requested command' },
      },
    ]);
    expect(tool.usage.output_tokens).toBe(12);
  });

  it('answers a tool_result with its text', async () => {
    const message = await client.messages.create({
      model: 'm',
      max_tokens: 64,
      messages: [
        { role: 'user', content: 'RUN_BASH:echo 42' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'echo 42' } }],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '42\n' }] },
      ],
    });
    expect(message.content).toEqual([{ type: 'text', text: 'Tool said: 42' }]);
  });

  it('counts tokens', async () => {
    const count = await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
    expect(count.input_tokens).toBeGreaterThan(0);
  });

  it('produces errors the SDK maps to its error classes', async () => {
    server.respondWith(() => ({
      kind: 'error',
      status: 429,
      type: 'rate_limit_error',
      message: 'slow down',
      headers: { 'retry-after': '7' },
    }));
    const limited = await client.messages
      .create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] })
      .catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect((limited as InstanceType<typeof Anthropic.RateLimitError>).headers.get('retry-after')).toBe('7');
    expect((limited as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'slow down' },
    });
    server.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    const overloaded = await client.messages
      .create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] })
      .catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(Anthropic.InternalServerError);
    expect((overloaded as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    server.respondWith(undefined);
    // The SDK refuses to send without a credential, so ask without it by hand.
    const anonymous = await fetch(`${server.url}/v1/messages`, { method: 'POST', body: '{}' });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error' },
      request_id: expect.stringMatching(/^req_/),
    });
  });
});
