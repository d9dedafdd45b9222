import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { renderSse, startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/** A replica told to stop (rolling update): streams in flight run to their end, new requests are turned away. */
describe('shutting down', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;

  beforeAll(async () => {
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url });
  });
  afterAll(async () => {
    await upstream?.close();
    await db?.close();
  });

  it('finishes the stream in flight, answers a request arriving on its connection with a 503 overloaded_error, and accepts no new connections', async () => {
    const { key } = await seedKey(db, { routing: 'PlanOnly' });
    const events = renderSse({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'still streaming' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    upstream.respondWith(() => ({
      kind: 'raw',
      headers: { 'content-type': 'text/event-stream' },
      chunks: events,
      delayMs: 100,
    }));
    const { port } = new URL(proxy.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const body = '{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}';
    socket.write(
      `POST /ak/${key}/v1/messages HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\nx-api-key: sk-ant-client\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    await expect.poll(() => received.includes('message_start')).toBe(true);

    const closed = proxy.close();
    await expect.poll(() => refused(Number(port))).toBe(true);
    // Pipelined behind the stream on its still-open connection: answered once the stream is done.
    socket.write(`GET /ak/${key}/v1/models HTTP/1.1\r\nhost: proxy\r\nx-api-key: sk-ant-client\r\n\r\n`);
    await ended;
    await closed;

    const [stream, late] = received.split(/(?=HTTP\/1\.1 )/);
    expect(stream).toMatch(/^HTTP\/1\.1 200 /);
    expect(stream).toContain('event: message_stop');
    expect(late).toMatch(/^HTTP\/1\.1 503 /);
    expect(late?.toLowerCase()).toContain('connection: close');
    const json = JSON.parse(late?.slice(late.indexOf('\r\n\r\n') + 4) ?? '') as {
      type: string;
      error: { type: string };
    };
    expect(json).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
    expect(upstream.requests.filter((request) => request.path === '/v1/models')).toHaveLength(0);
  });
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe: Socket = connect(port, '127.0.0.1');
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', () => resolve(true));
  });
}
