import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderSse, startAnthropicServer, type AnthropicTestServer, type Message } from '@ccproxy/test-harness';

/**
 * The edges of the Anthropic test server the proxy tests lean on: raw recording (query string,
 * headers, body bytes), byte-exact SSE, scripted byte splits, resets and stalls, and the error
 * shapes for bad input — each checked with the official SDK where the SDK can see it.
 */
describe('Anthropic test server: recording, bytes and failure scripts', () => {
  let server: AnthropicTestServer;
  let client: Anthropic;
  const ask = { model: 'claude-test', max_tokens: 32, messages: [{ role: 'user' as const, content: 'hi' }] };
  beforeAll(async () => {
    server = await startAnthropicServer();
    client = new Anthropic({ baseURL: server.url, apiKey: 'sk-test', maxRetries: 0 });
  });
  afterEach(() => server.respondWith(undefined));
  afterAll(() => server.close());

  it('records method, path with query string, lowercased headers and the exact body bytes', async () => {
    const before = server.requests.length;
    await client.beta.messages.create(
      { ...ask, betas: ['interleaved-thinking-2025-05-14'] },
      { headers: { 'X-Api-Key': 'sk-raw' }, query: { beta: 'true' } },
    );
    const recorded = server.requests[before];
    expect(recorded?.method).toBe('POST');
    expect(recorded?.path).toBe('/v1/messages?beta=true');
    expect(recorded?.headers['x-api-key']).toBe('sk-raw');
    expect(recorded?.headers['anthropic-beta']).toBe('interleaved-thinking-2025-05-14');
    expect(recorded?.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(recorded?.body.equals(Buffer.from(JSON.stringify(ask)))).toBe(true);
  });

  it('sends streamed messages as exactly the bytes renderSse produces, text in several deltas', async () => {
    const index = server.requests.length;
    const response = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'k' },
      body: JSON.stringify({ ...ask, stream: true }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const received = Buffer.from(await response.arrayBuffer());
    expect(received.equals(Buffer.concat(server.sent[index] ?? []))).toBe(true);
    const text = received.toString('utf8');
    expect(text.match(/^event: \w+$/gm)).toEqual([
      'event: message_start',
      'event: content_block_start',
      'event: ping',
      'event: content_block_delta',
      'event: content_block_delta',
      'event: content_block_delta',
      'event: content_block_stop',
      'event: message_delta',
      'event: message_stop',
    ]);
    const message: Message = {
      id: 'msg_x',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'abcdef' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    const events = renderSse(message).map((chunk) => chunk.toString());
    expect(events.every((event) => /^event: \w+\ndata: \{.*\}\n\n$/s.test(event))).toBe(true);
  });

  it('plays arbitrary byte splits, including a UTF-8 character cut across two chunks', async () => {
    const message: Message = {
      id: 'msg_utf8',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'héllo 🌍 wörld' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 3, output_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    const bytes = Buffer.concat(renderSse(message));
    const cut = bytes.indexOf(Buffer.from('🌍')) + 2;
    server.respondWith(() => ({ kind: 'raw', chunks: [bytes.subarray(0, cut), bytes.subarray(cut)], delayMs: 20 }));
    const final = await client.messages.stream(ask).finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: 'héllo 🌍 wörld' }]);
    expect(final.usage.output_tokens).toBe(4);
  });

  it('resets the socket before headers or mid-stream, which the SDK reports as a connection error', async () => {
    server.respondWith(() => ({ kind: 'reset' }));
    await expect(client.messages.create(ask)).rejects.toBeInstanceOf(Anthropic.APIConnectionError);
    const first = renderSse({
      id: 'msg_r',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'partial answer' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    }).slice(0, 4);
    // The reset follows the last write at once and can swallow it; `delayMs` lets earlier chunks out.
    server.respondWith(() => ({
      kind: 'raw',
      chunks: [...first, Buffer.from('event: content_block_delta\n')],
      delayMs: 20,
      then: 'reset',
    }));
    const index = server.requests.length;
    const seen: string[] = [];
    const stream = client.messages.stream(ask).on('text', (text) => seen.push(text));
    const failed = await stream.finalMessage().catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(Anthropic.AnthropicError);
    expect(String((failed as Error).cause)).toMatch(/terminated/);
    expect(seen.length).toBeGreaterThan(0);
    await expect.poll(() => server.requests[index]?.aborted).toBe(true);
  });

  it('stalls before headers (client timeout) and after the first event (client must give up itself)', async () => {
    server.respondWith(() => ({ kind: 'stall' }));
    await expect(client.messages.create(ask, { timeout: 300 })).rejects.toBeInstanceOf(
      Anthropic.APIConnectionTimeoutError,
    );
    const [start] = renderSse({
      id: 'msg_s',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'never' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    server.respondWith(() => ({ kind: 'raw', chunks: start === undefined ? [] : [start], then: 'stall' }));
    const index = server.requests.length;
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'k' },
      body: JSON.stringify({ ...ask, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error('no response body');
    const chunk = await reader.read();
    expect(Buffer.from(chunk.value ?? []).toString()).toMatch(/^event: message_start\n/);
    const next = await Promise.race([
      reader
        .read()
        .then(() => 'data' as const)
        .catch(() => 'aborted' as const),
      new Promise<'quiet'>((resolve) => setTimeout(() => resolve('quiet'), 300)),
    ]);
    expect(next).toBe('quiet');
    controller.abort();
    await expect.poll(() => server.requests[index]?.aborted).toBe(true);
  });

  it('maps scripted errors onto the SDK error classes with status, type and request id', async () => {
    server.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: 'Internal server error' }));
    const failed = await client.messages.create(ask).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(Anthropic.InternalServerError);
    expect((failed as InstanceType<typeof Anthropic.APIError>).status).toBe(500);
    expect((failed as InstanceType<typeof Anthropic.APIError>).requestID).toMatch(/^req_/);
    server.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    const streamed = await client.messages
      .stream(ask)
      .finalMessage()
      .catch((error: unknown) => error);
    expect((streamed as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((streamed as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      error: { type: 'overloaded_error' },
    });
  });

  it('answers malformed JSON with 400 and an unknown path with 404, in Anthropic error shape', async () => {
    const bad = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'k' },
      body: '{"model":',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error' },
      request_id: expect.stringMatching(/^req_/),
    });
    const missing = await client.models.list().catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect((missing as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error' },
    });
  });

  it('counts tokens deterministically', async () => {
    const a = await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] });
    const b = await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] });
    expect(a.input_tokens).toBeGreaterThan(0);
    expect(b).toEqual(a);
  });
});
