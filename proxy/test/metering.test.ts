import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, migrate, PgDatabase, type Database } from '@ccproxy/core';
import {
  renderSse,
  startAnthropicServer,
  startBedrockServer,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type BedrockTestServer,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrock = { apiKey: 'metering-bedrock-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };
const silent = createLogger({ level: 'silent' });

async function call(proxy: RunningProxy, key: string, stream: boolean): Promise<{ status: number; id: string }> {
  const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
    method: 'POST',
    body: JSON.stringify({
      model: 'claude-test-model',
      max_tokens: 10,
      stream,
      messages: [{ role: 'user', content: 'hello' }],
    }),
    headers: { 'x-api-key': 'sk-ant-dev' },
  });
  await response.body.text();
  return { status: response.statusCode, id: response.headers['x-ccproxy-request-id'] as string };
}

/**
 * Flushes until `count` rows exist: a request's record is queued once its answer is out, which
 * can be just after the client read the last byte.
 */
async function flushUntil(proxy: RunningProxy, db: Database, count: number): Promise<void> {
  await expect
    .poll(
      async () => {
        await proxy.usage?.flush();
        const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM token_usage');
        return Number(row?.n);
      },
      { timeout: 5_000, interval: 50 },
    )
    .toBe(count);
}

interface Row {
  request_id: string;
  provider: string;
  failover: boolean;
  input_tokens: string;
  output_tokens: string;
  complete: boolean;
}

/** Every completed request counted exactly once, through both providers, Postgres outages included. */
describe('usage metering', () => {
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let dir: string;

  beforeAll(async () => {
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-metering-'));
  });
  afterAll(async () => {
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('records one row per completed request with the upstream-reported tokens; aggregates equal the rows', async () => {
    const db = await openTestDatabase();
    const proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url },
      { spoolDir: join(dir, 'spool-1') },
    );
    try {
      const plan = (await seedKey(db, { routing: 'PlanOnly', bedrock })).key;
      const onBedrock = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
      const calls = await Promise.all(
        Array.from({ length: 60 }, (_, i) => call(proxy, i % 2 === 0 ? plan : onBedrock, i % 3 === 0)),
      );
      expect(calls.every((c) => c.status === 200)).toBe(true);
      await flushUntil(proxy, db, 60);
      const rows = await db.query<Row>(
        'SELECT request_id, provider, failover, input_tokens::text, output_tokens::text, complete FROM token_usage',
      );
      expect(rows.map((r) => r.request_id).sort()).toEqual(calls.map((c) => c.id).sort());
      for (const row of rows) {
        expect(row.complete).toBe(true);
        expect([row.input_tokens, row.output_tokens]).toEqual(row.provider === 'plan' ? ['25', '12'] : ['30', '15']);
      }
      const [sums] = await db.query<{ requests: string; input: string; output: string }>(
        "SELECT sum(requests)::text AS requests, sum(input_tokens)::text AS input, sum(output_tokens)::text AS output FROM usage_aggregates WHERE bucket = 'hour'",
      );
      expect(sums).toEqual({ requests: '60', input: String(30 * 25 + 30 * 30), output: String(30 * 12 + 30 * 15) });
      const [days] = await db.query<{ requests: string }>(
        "SELECT sum(requests)::text AS requests FROM usage_aggregates WHERE bucket = 'day'",
      );
      expect(days?.requests).toBe('60');
      const tokens = await proxy.registry.getSingleMetricAsString('ccproxy_tokens_total');
      expect(tokens).toMatch(/ccproxy_tokens_total\{provider="bedrock",type="input"\} 900/);
    } finally {
      await proxy.close();
      await db.close();
    }
  });

  it('records what a stream that ended early had reported, and says it is incomplete; skips Plan usage when told to', async () => {
    const db = await openTestDatabase();
    const proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: anthropic.url }, { spoolDir: join(dir, 'spool-3') });
    const unmetered = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, CCPROXY_METER_PLAN: 'false' },
      { spoolDir: join(dir, 'spool-4') },
    );
    try {
      const plan = (await seedKey(db, { routing: 'PlanOnly' })).key;
      const start =
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-served","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":41,"output_tokens":1,"cache_read_input_tokens":7,"cache_creation_input_tokens":0}}}\n\n';
      // The start arrives; 20 ms later half an event, then the connection breaks.
      anthropic.respondWith(() => ({
        kind: 'raw',
        chunks: [Buffer.from(start), Buffer.from('event: content_block_start\n')],
        delayMs: 20,
        then: 'reset',
      }));
      const cut = await call(proxy, plan, true);
      anthropic.respondWith(undefined);
      const skipped = await call(unmetered, plan, false);
      await flushUntil(proxy, db, 1);
      await unmetered.usage?.flush();
      const rows = await db.query<{
        request_id: string;
        complete: boolean;
        input_tokens: string;
        cache_read_tokens: string;
        model_served: string;
      }>('SELECT request_id, complete, input_tokens::text, cache_read_tokens::text, model_served FROM token_usage');
      expect(rows).toEqual([
        {
          request_id: cut.id,
          complete: false,
          input_tokens: '41',
          cache_read_tokens: '7',
          model_served: 'claude-served',
        },
      ]);
      expect(rows.map((r) => r.request_id)).not.toContain(skipped.id);
    } finally {
      await Promise.all([proxy.close(), unmetered.close()]);
      await db.close();
    }
  });

  it('relays compressed answers byte for byte and still meters them (gzip SSE, brotli JSON)', async () => {
    const db = await openTestDatabase();
    const proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: anthropic.url }, { spoolDir: join(dir, 'spool-5') });
    try {
      const plan = (await seedKey(db, { routing: 'PlanOnly' })).key;
      const message = {
        id: 'msg_z',
        type: 'message' as const,
        role: 'assistant' as const,
        model: 'claude-zipped',
        content: [{ type: 'text' as const, text: 'compressed hello' }],
        stop_reason: 'end_turn' as const,
        stop_sequence: null,
        usage: { input_tokens: 77, output_tokens: 33, cache_creation_input_tokens: 5, cache_read_input_tokens: 9 },
      };
      const sse = gzipSync(Buffer.concat(renderSse(message)));
      const json = brotliCompressSync(Buffer.from(JSON.stringify(message)));
      const results: Array<{ id: string; bytes: Buffer }> = [];
      const cases: Array<[Buffer, Record<string, string>]> = [
        [sse, { 'content-encoding': 'gzip' }],
        [json, { 'content-encoding': 'br', 'content-type': 'application/json' }],
      ];
      for (const [bytes, headers] of cases) {
        anthropic.respondWith(() => ({
          kind: 'raw',
          chunks: [bytes.subarray(0, 10), bytes.subarray(10, 25), bytes.subarray(25)],
          delayMs: 2,
          headers,
        }));
        const response = await request(`${proxy.url}/ak/${plan}/v1/messages`, {
          method: 'POST',
          body: '{"model":"m","messages":[]}',
          headers: { 'x-api-key': 'k', 'accept-encoding': 'gzip, br' },
        });
        results.push({
          id: response.headers['x-ccproxy-request-id'] as string,
          bytes: Buffer.from(await response.body.arrayBuffer()),
        });
      }
      anthropic.respondWith(undefined);
      expect(results[0]?.bytes.equals(sse)).toBe(true);
      expect(results[1]?.bytes.equals(json)).toBe(true);
      await flushUntil(proxy, db, 2);
      const rows = () =>
        db.query<{
          request_id: string;
          input_tokens: string;
          output_tokens: string;
          cache_read_tokens: string;
          complete: boolean;
        }>(
          'SELECT request_id, input_tokens::text, output_tokens::text, cache_read_tokens::text, complete FROM token_usage ORDER BY occurred_at',
        );
      expect(await rows()).toEqual(
        results.map((r) => ({
          request_id: r.id,
          input_tokens: '77',
          output_tokens: '33',
          cache_read_tokens: '9',
          complete: true,
        })),
      );
    } finally {
      await proxy.close();
      await db.close();
    }
  });

  it('loses and duplicates nothing when Postgres goes away under load, and fails no request because of it', async () => {
    const postgres: ThrowawayPostgres = await startThrowawayPostgres();
    const db = new PgDatabase({ url: postgres.url, logger: silent, reconnectDelayMs: 100 });
    await migrate(db, silent);
    const proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url },
      { spoolDir: join(dir, 'spool-2') },
    );
    try {
      const plan = (await seedKey(db, { routing: 'PlanOnly', bedrock })).key;
      const onBedrock = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
      // Warm: keys and decrypted Bedrock credentials are cached before the outage.
      const ids = [(await call(proxy, plan, false)).id, (await call(proxy, onBedrock, false)).id];
      const load = (n: number) =>
        Promise.all(Array.from({ length: n }, (_, i) => call(proxy, i % 2 === 0 ? plan : onBedrock, i % 2 === 0)));
      const before = await load(20);
      await postgres.pause();
      const during = await load(30);
      expect(proxy.usage?.pending).toBeGreaterThan(0);
      await postgres.resume();
      const after = await load(20);
      const all = [...before, ...during, ...after];
      expect(all.filter((c) => c.status !== 200)).toEqual([]);
      ids.push(...all.map((c) => c.id));
      await expect
        .poll(
          async () => {
            await proxy.usage?.flush();
            return proxy.usage?.pending;
          },
          { timeout: 15_000, interval: 200 },
        )
        .toBe(0);
      const rows = await db.query<{ request_id: string }>('SELECT request_id FROM token_usage');
      expect(rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
      const [sums] = await db.query<{ requests: string }>(
        "SELECT sum(requests)::text AS requests FROM usage_aggregates WHERE bucket = 'hour'",
      );
      expect(sums?.requests).toBe(String(ids.length));
    } finally {
      await proxy.close();
      await db.close();
      await postgres.stop();
    }
  });
});
