import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startBedrockServer, type BedrockTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import { startHostileStack, type HostileStack } from './hostile-stack.ts';
import { chunked, head, startHostileUpstream, type HostileUpstream } from './hostile-upstream.ts';

const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
const usage = { input_tokens: 11, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 3 };
const start = event('message_start', {
  type: 'message_start',
  message: {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage,
  },
});
const blockStart = event('content_block_start', {
  type: 'content_block_start',
  index: 0,
  content_block: { type: 'text', text: '' },
});
const text = event('content_block_delta', {
  type: 'content_block_delta',
  index: 0,
  delta: { type: 'text_delta', text: 'Hello there' },
});
const blockStop = event('content_block_stop', { type: 'content_block_stop', index: 0 });
const delta = event('message_delta', {
  type: 'message_delta',
  delta: { stop_reason: 'end_turn', stop_sequence: null },
  usage: { output_tokens: 7 },
});
const stop = event('message_stop', { type: 'message_stop' });
const untilDelta = start + blockStart + text + blockStop + delta;
const sseHead = (extra: Record<string, string> = {}) =>
  head(200, { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked', ...extra });
const sse = (body: string) => [sseHead(), chunked([Buffer.from(body)])];

interface StreamCase {
  name: string;
  bytes: Buffer[];
  /** What the client must receive before the proxy's error event (whole events only). */
  relayed: string;
  then?: 'end' | 'reset';
  outcome?: string;
  inputTokens: number;
}

/** Upstreams that end a 200 SSE answer without a dispatched, parseable `message_stop`. */
const truncatedStreams: StreamCase[] = [
  {
    name: 'clean EOF mid-event',
    bytes: sse(start + blockStart + text.slice(0, 30)),
    relayed: start + blockStart,
    inputTokens: 11,
  },
  {
    name: 'clean EOF after message_delta without message_stop',
    bytes: sse(untilDelta),
    relayed: untilDelta,
    inputTokens: 11,
  },
  {
    name: 'message_stop with data: garbage',
    bytes: sse(`${untilDelta}event: message_stop\ndata: garbage\n\n`),
    relayed: `${untilDelta}event: message_stop\ndata: garbage\n\n`,
    inputTokens: 11,
  },
  {
    name: 'data: {not json in every event',
    bytes: sse('event: message_start\ndata: {not json\n\nevent: message_stop\ndata: {not json\n\n'),
    relayed: 'event: message_start\ndata: {not json\n\nevent: message_stop\ndata: {not json\n\n',
    inputTokens: 0,
  },
  {
    name: 'message_stop event without data',
    bytes: sse(`${untilDelta}event: message_stop\n\n`),
    relayed: `${untilDelta}event: message_stop\n\n`,
    inputTokens: 11,
  },
  {
    name: 'message_stop without its blank line',
    bytes: sse(`${untilDelta}event: message_stop\ndata: {"type":"message_stop"}\n`),
    relayed: untilDelta,
    inputTokens: 11,
  },
  {
    name: 'CR-only framing that ends early',
    bytes: sse(untilDelta.replaceAll('\n', '\r')),
    relayed: untilDelta.replaceAll('\n', '\r'),
    inputTokens: 11,
  },
  {
    name: 'a close-delimited body (no length, no chunking) that ends after message_delta',
    bytes: [head(200, { 'content-type': 'text/event-stream', connection: 'close' }), Buffer.from(untilDelta)],
    relayed: untilDelta,
    inputTokens: 11,
  },
  {
    name: 'a reset after message_delta',
    bytes: [sseHead(), Buffer.from(`${Buffer.byteLength(untilDelta).toString(16)}\r\n${untilDelta}\r\n`)],
    relayed: untilDelta,
    then: 'reset',
    outcome: 'upstream_failed',
    inputTokens: 11,
  },
];

/** Whole streams, oddly framed or with garbage the client may see: relayed as they are, complete. */
const wholeStreams: Array<{ name: string; body: string }> = [
  { name: 'LF framing', body: untilDelta + stop },
  { name: 'CR-only framing', body: (untilDelta + stop).replaceAll('\n', '\r') },
  { name: 'a garbage data-only event before message_stop', body: `${untilDelta}data: garbage\n\n${stop}` },
];

interface NonStreamCase {
  name: string;
  bytes: Buffer[];
  then?: 'end' | 'reset';
  outcome: string;
}

const message = JSON.stringify({
  id: 'msg_2',
  type: 'message',
  role: 'assistant',
  model: 'claude-x',
  content: [{ type: 'text', text: 'Hello there' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { ...usage, output_tokens: 7 },
});
const cut = '{"id":"msg_';
const json = (headers: Record<string, string>) => head(200, { 'content-type': 'application/json', ...headers });
const gzipped = gzipSync(message);

const truncatedBodies: NonStreamCase[] = [
  {
    name: 'cut short, chunked, ended cleanly',
    bytes: [json({ 'transfer-encoding': 'chunked' }), chunked([Buffer.from(cut)])],
    outcome: 'upstream_truncated',
  },
  {
    name: 'cut short with a matching content-length',
    bytes: [json({ 'content-length': String(cut.length) }), Buffer.from(cut)],
    outcome: 'upstream_truncated',
  },
  {
    name: 'cut short, close-delimited',
    bytes: [json({ connection: 'close' }), Buffer.from(cut)],
    outcome: 'upstream_truncated',
  },
  {
    name: 'shorter than its content-length',
    bytes: [json({ 'content-length': String(message.length) }), Buffer.from(message.slice(0, 40))],
    outcome: 'upstream_failed',
  },
  {
    name: 'gzip of a truncated JSON',
    bytes: [json({ 'content-encoding': 'gzip', 'content-length': String(gzipSync(cut).length) }), gzipSync(cut)],
    outcome: 'upstream_truncated',
  },
  {
    name: 'a gzip stream cut short',
    bytes: [
      json({ 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' }),
      chunked([gzipped.subarray(0, gzipped.length - 12)]),
    ],
    outcome: 'upstream_truncated',
  },
];

function metric(proxy: RunningProxy, name: string, labels: Record<string, string>) {
  return async () => {
    const found = (await proxy.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const values = (found?.values ?? []) as Array<{ labels: Record<string, unknown>; value: number }>;
    return values
      .filter((value) => Object.entries(labels).every(([k, v]) => value.labels[k] === v))
      .reduce((sum, value) => sum + value.value, 0);
  };
}

/**
 * Finding 7: the stream-completeness rule, against hostile upstreams. A 200 stream ends with
 * `message_stop` or an Anthropic `event: error`; a non-streaming body that is not whole JSON is
 * a 502; either way the log line, the metrics and the usage row say the answer was not complete.
 */
describe('07 stream completeness', () => {
  let stack: HostileStack;
  let db: Database;
  let hostile: HostileUpstream;
  let proxy: RunningProxy;
  let key: string;

  beforeAll(async () => {
    ({ db, hostile, proxy, key } = stack = await startHostileStack('07', { CCPROXY_UPSTREAM_BODY_TIMEOUT_MS: '2000' }));
  });
  afterAll(async () => stack?.close());

  const post = (stream: boolean) =>
    request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-client', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-x', max_tokens: 10, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });
  const sdk = () => new Anthropic({ baseURL: `${proxy.url}/ak/${key}`, apiKey: 'sk-ant-client', maxRetries: 0 });

  async function usageRow(requestId: string) {
    let rows: Array<{ complete: boolean; input_tokens: string; status: number }> = [];
    await expect
      .poll(
        async () => {
          await proxy.usage?.flush();
          rows = await db.query('SELECT complete, input_tokens::text, status FROM token_usage WHERE request_id = $1', [
            requestId,
          ]);
          return rows.length;
        },
        { timeout: 5_000, interval: 50 },
      )
      .toBe(1);
    return rows[0];
  }

  function logLine(requestId: string): Record<string, unknown> | undefined {
    const line = proxy.logs.find((l) => l.includes(requestId) && l.includes('request completed'));
    return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
  }

  it.each(truncatedStreams)(
    'SSE, $name → whole events, then event: error; logged, metered and counted as truncated',
    async (c) => {
      hostile.answer({ bytes: c.bytes, then: c.then ?? 'end' });
      const outcome = c.outcome ?? 'upstream_truncated';
      const streamErrors = metric(proxy, 'ccproxy_stream_errors_total', { upstream: 'plan', outcome });
      const errors = metric(proxy, 'ccproxy_errors_total', { upstream: 'plan', type: 'api_error' });
      const [streamErrorsBefore, errorsBefore] = [await streamErrors(), await errors()];

      const response = await post(true);
      const id = response.headers['x-ccproxy-request-id'] as string;
      const body = await response.body.text();
      expect(response.statusCode).toBe(200);
      expect(body.startsWith(c.relayed)).toBe(true);
      const tail = body.slice(c.relayed.length);
      const match = /^event: error\ndata: (.*)\n\n$/.exec(tail);
      expect(match, tail).not.toBeNull();
      expect(JSON.parse(match?.[1] ?? '')).toEqual({
        type: 'error',
        error: { type: 'api_error', message: expect.any(String) },
        request_id: id,
      });

      expect(logLine(id)).toMatchObject({ outcome, status: 200, upstream: 'plan' });
      expect(await streamErrors()).toBe(streamErrorsBefore + 1);
      expect(await errors()).toBe(errorsBefore + 1);
      expect(await usageRow(id)).toEqual({ complete: false, input_tokens: String(c.inputTokens), status: 200 });

      // The official SDK raises instead of returning a partial message.
      const error = await sdk()
        .messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
        .finalMessage()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
    },
  );

  it.each(wholeStreams)('SSE, $name, with message_stop → relayed byte for byte, complete', async (c) => {
    hostile.answer({ bytes: sse(c.body), then: 'end' });
    const response = await post(true);
    const id = response.headers['x-ccproxy-request-id'] as string;
    expect(await response.body.text()).toBe(c.body);
    expect(logLine(id)).toMatchObject({ outcome: 'complete' });
    expect(await usageRow(id)).toEqual({ complete: true, input_tokens: '11', status: 200 });
    const final = await sdk()
      .messages.stream({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text', text: 'Hello there' });
  });

  it('a gzip-compressed stream without message_stop is aborted (no plain error event fits in it), never ended cleanly', async () => {
    const compressed = gzipSync(untilDelta);
    hostile.answer({ bytes: [sseHead({ 'content-encoding': 'gzip' }), chunked([compressed])], then: 'end' });
    const response = await post(true);
    const id = response.headers['x-ccproxy-request-id'] as string;
    await expect(response.body.arrayBuffer()).rejects.toThrow();
    await expect.poll(() => logLine(id)?.outcome).toBe('upstream_truncated');
    expect((await usageRow(id))?.complete).toBe(false);
  });

  it.each(truncatedBodies)('JSON, $name → 502 api_error before any byte, logged and metered', async (c) => {
    hostile.answer({ bytes: c.bytes, then: c.then ?? 'end' });
    const errors = metric(proxy, 'ccproxy_errors_total', { upstream: 'plan', type: 'api_error' });
    const errorsBefore = await errors();
    const response = await post(false);
    const id = response.headers['x-ccproxy-request-id'] as string;
    expect(response.statusCode).toBe(502);
    expect(await response.body.json()).toEqual({
      type: 'error',
      error: { type: 'api_error', message: expect.any(String) },
      request_id: id,
    });
    expect(logLine(id)).toMatchObject({ outcome: c.outcome, status: 502, upstream: 'plan' });
    expect(await errors()).toBe(errorsBefore + 1);
    expect(await usageRow(id)).toMatchObject({ complete: false, status: 502 });

    const error = await sdk()
      .messages.create({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
  });

  it.each([
    { name: 'with content-length', bytes: [json({ 'content-length': String(message.length) }), Buffer.from(message)] },
    {
      name: 'chunked',
      bytes: [
        json({ 'transfer-encoding': 'chunked' }),
        chunked([Buffer.from(message.slice(0, 50)), Buffer.from(message.slice(50))]),
      ],
    },
    {
      name: 'gzip-compressed',
      bytes: [json({ 'content-encoding': 'gzip', 'content-length': String(gzipped.length) }), gzipped],
    },
  ])('JSON whole, $name → relayed as it came, metered complete', async (c) => {
    hostile.answer({ bytes: c.bytes, then: 'end' });
    const response = await post(false);
    const id = response.headers['x-ccproxy-request-id'] as string;
    expect(response.statusCode).toBe(200);
    const body = Buffer.from(await response.body.arrayBuffer());
    expect(body.equals(c.name === 'gzip-compressed' ? gzipped : Buffer.from(message))).toBe(true);
    expect(logLine(id)).toMatchObject({ outcome: 'complete', status: 200 });
    expect(await usageRow(id)).toEqual({ complete: true, input_tokens: '11', status: 200 });
  });
});

describe('07 stream completeness: JSON answers over the check limit', () => {
  let db: Database;
  let hostile: HostileUpstream;
  let proxy: RunningProxy;
  let key: string;

  beforeAll(async () => {
    db = await openTestDatabase();
    hostile = await startHostileUpstream();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: hostile.url });
    ({ key } = await seedKey(db, { routing: 'PlanOnly' }));
  });
  afterAll(async () => {
    await proxy?.close();
    await hostile?.close();
    await db?.close();
  });

  it('a chunked JSON answer larger than 16 MiB is relayed whole as it comes (unchecked, documented)', async () => {
    const big = Buffer.from(JSON.stringify({ type: 'list', data: 'x'.repeat(17 * 1024 * 1024) }));
    const parts = Array.from({ length: 20 }, (_, i) =>
      big.subarray((i * big.length) / 20, ((i + 1) * big.length) / 20),
    );
    hostile.answer({ bytes: [json({ 'transfer-encoding': 'chunked' }), chunked(parts)], then: 'end', delayMs: 0 });
    const response = await request(`${proxy.url}/ak/${key}/v1/models`, {
      method: 'GET',
      headers: { 'x-api-key': 'sk-ant-client' },
    });
    expect(response.statusCode).toBe(200);
    expect(Buffer.from(await response.body.arrayBuffer()).equals(big)).toBe(true);
  });
});

/** The same rule on the Bedrock path: an event stream that ends without messageStop and metadata. */
describe('07 stream completeness on Bedrock', () => {
  let db: Database;
  let bedrock: BedrockTestServer;
  let proxy: RunningProxy;
  let key: string;
  let dir: string;
  const apiKey = 'bedrock-07-key';

  beforeAll(async () => {
    db = await openTestDatabase();
    bedrock = await startBedrockServer({ apiKey });
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-07b-'));
    proxy = await startProxy(db, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url }, { spoolDir: dir });
    ({ key } = await seedKey(db, {
      routing: 'BedrockOnly',
      bedrock: { apiKey, model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' },
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await bedrock?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const client = () => new Anthropic({ baseURL: `${proxy.url}/ak/${key}`, apiKey: 'unused', maxRetries: 0 });
  const params = { model: 'claude-x', max_tokens: 10, messages: [{ role: 'user' as const, content: 'hi' }] };

  // One text block in two deltas: messageStart, 2 deltas, contentBlockStop, messageStop, metadata.
  it.each([
    { name: 'mid-stream', afterFrames: 2 },
    { name: 'after messageStop, without metadata', afterFrames: 5 },
  ])('a clean end $name → event: error, truncated in the log and the usage row', async ({ afterFrames }) => {
    bedrock.respondWith(() => ({ kind: 'broken', content: [{ text: 'Hello there' }], afterFrames, then: 'end' }));
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const id = response.headers['x-ccproxy-request-id'] as string;
    const body = await response.body.text();
    expect(body).not.toContain('event: message_stop');
    expect(body).toMatch(
      /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\},"request_id":"[^"]+"\}\n\n$/,
    );
    await expect
      .poll(() => proxy.logs.find((l) => l.includes(id) && l.includes('request completed')))
      .toContain('"outcome":"upstream_truncated"');
    await proxy.usage?.flush();
    await expect
      .poll(async () => {
        await proxy.usage?.flush();
        return (
          await db.query<{ complete: boolean }>('SELECT complete FROM token_usage WHERE request_id = $1', [id])
        )[0]?.complete;
      })
      .toBe(false);
    const error = await client()
      .messages.stream(params)
      .finalMessage()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    bedrock.respondWith(undefined);
  });

  it.each([
    { name: 'cut short', body: '{"output":{"message":{"role":"assistant","content":[{"te' },
    { name: 'not a Converse response', body: '{"output":null}' },
  ])('a non-streaming Converse body $name → 502 api_error, not a 500', async ({ body }) => {
    bedrock.respondWith(() => ({ kind: 'raw', status: 200, body: Buffer.from(body) }));
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
    });
    expect(response.statusCode).toBe(502);
    expect(await response.body.json()).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    bedrock.respondWith(undefined);
  });
});
