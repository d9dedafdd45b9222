import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPriceTable, type Database, type PriceTable } from '@ccproxy/core';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrock = { apiKey: 'spend-bedrock-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };

async function call(proxy: RunningProxy, key: string, stream: boolean): Promise<number> {
  const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
    method: 'POST',
    body: JSON.stringify({
      model: 'claude-test-model',
      max_tokens: 10,
      stream,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    headers: { 'x-api-key': 'sk-ant-dev' },
  });
  await response.body.text();
  return response.statusCode;
}

/** `ccproxy_spend_usd_total` / `ccproxy_unpriced_requests_total` by provider, as /metrics has them. */
async function scrape(proxy: RunningProxy): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of ['ccproxy_spend_usd_total', 'ccproxy_unpriced_requests_total']) {
    const text = await proxy.registry.getSingleMetricAsString(name);
    for (const [, provider, value] of text.matchAll(/\{provider="(\w+)"\} (\S+)/g))
      out[`${name.replace(/^ccproxy_|_total$/g, '')}:${provider ?? ''}`] = Number(value);
  }
  return out;
}

/** What the usage store priced, per provider: the dashboards' spend must be exactly this. */
async function stored(proxy: RunningProxy, db: Database, rows: number) {
  await expect
    .poll(async () => {
      await proxy.usage?.flush();
      const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM token_usage');
      return Number(row?.n);
    })
    .toBe(rows);
  return db.query<{ provider: string; usd: number; unpriced: number }>(
    `SELECT provider, coalesce(sum(cost_micro_usd), 0)::float8 / 1e6 AS usd,
            count(*) FILTER (WHERE cost_micro_usd IS NULL AND metered)::int AS unpriced
       FROM token_usage GROUP BY provider ORDER BY provider`,
  );
}

describe('spend by provider (ccproxy_spend_usd_total)', () => {
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let dir: string;
  beforeAll(async () => {
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-spend-'));
  });
  afterAll(async () => {
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function run(prices: PriceTable | undefined, spool: string) {
    const db = await openTestDatabase();
    const proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url },
      { spoolDir: join(dir, spool), ...(prices === undefined ? {} : { prices }) },
    );
    try {
      const before = await scrape(proxy);
      const plan = (await seedKey(db, { routing: 'PlanOnly', bedrock })).key;
      const onBedrock = (await seedKey(db, { routing: 'BedrockOnly', bedrock })).key;
      const statuses = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call(proxy, i % 3 === 0 ? plan : onBedrock, i % 2 === 0)),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      // A failed answer with no tokens is logged, not metered: neither spend nor unpriced counts it.
      anthropic.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: 'upstream broke' }));
      expect(await call(proxy, plan, false)).toBe(500);
      anthropic.respondWith(undefined);
      return { before, after: await scrape(proxy), rows: await stored(proxy, db, 13) };
    } finally {
      await proxy.close();
      await db.close();
    }
  }

  it('adds exactly what the usage store priced, by provider; unpriced requests are counted apart, never as 0 USD', async () => {
    const { before, after, rows } = await run(undefined, 'default');
    // Both series exist before any request, at zero.
    expect(before).toEqual({
      'spend_usd:plan': 0,
      'spend_usd:bedrock': 0,
      'unpriced_requests:plan': 0,
      'unpriced_requests:bedrock': 0,
    });
    const byProvider = Object.fromEntries(rows.map((r) => [r.provider, r]));
    // Bedrock served Sonnet 4.5 (priced); the Plan test server's model is in no price table.
    expect(byProvider.bedrock?.usd).toBeGreaterThan(0);
    expect(after['spend_usd:bedrock']).toBeCloseTo(byProvider.bedrock?.usd ?? NaN, 9);
    expect(after['unpriced_requests:bedrock']).toBe(0);
    expect(after['spend_usd:plan']).toBe(0);
    expect(after['unpriced_requests:plan']).toBe(4);
    expect(byProvider.plan?.unpriced).toBe(4);
  });

  it('uses the same price table as the usage store (CCPROXY_PRICE_TABLE_FILE over the built-in one)', async () => {
    const prices = buildPriceTable({
      effectiveDate: '2025-01-01',
      entries: [
        {
          family: 'claude-test-model',
          from: '2025-01-01',
          input: 1000,
          output: 2000,
          cacheRead: 0,
          cacheWrite5m: 0,
          cacheWrite1h: 0,
        },
      ],
    });
    const { after, rows } = await run(prices, 'override');
    const byProvider = Object.fromEntries(rows.map((r) => [r.provider, r]));
    expect(byProvider.plan?.usd).toBeGreaterThan(0);
    expect(after['spend_usd:plan']).toBeCloseTo(byProvider.plan?.usd ?? NaN, 9);
    expect(after['spend_usd:bedrock']).toBeCloseTo(byProvider.bedrock?.usd ?? NaN, 9);
    expect(after['unpriced_requests:plan']).toBe(0);
  });
});
