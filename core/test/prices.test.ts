import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import {
  ConfigError,
  buildPriceTable,
  costMicroUsd,
  defaultPriceTable,
  insertUsage,
  loadPriceTable,
  normaliseModelId,
  priceEntryFor,
  type UsageRecord,
} from '@ccproxy/core';
import { openMigratedDatabase } from '@ccproxy/test-harness';

const day = Date.parse('2026-12-07T12:00:00Z');
const usage = (model: string | null, provider: 'plan' | 'bedrock' = 'plan') => ({
  provider,
  model,
  occurredAt: day,
  inputTokens: 1_000,
  outputTokens: 2_000,
  cacheReadTokens: 10_000,
  cacheCreationTokens: 4_000,
});

describe('the price table', () => {
  it('reads every spelling of a model id down to one family', () => {
    const spellings = [
      'claude-sonnet-4-5-20250929',
      'claude-sonnet-4-5',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'CLAUDE-SONNET-4-5@20250929',
    ];
    for (const spelling of spellings) expect(normaliseModelId(spelling), spelling).toBe('claude-sonnet-4-5');
  });

  it('prices input, output, cache reads and cache writes, each version at its own rate', () => {
    const table = buildPriceTable();
    // Sonnet 4.5: $3 in, $15 out, $0.30 cache read, $3.75 cache write (5 min) per million tokens.
    expect(costMicroUsd(table, usage('claude-sonnet-4-5-20250929'))).toBe(
      1_000 * 3 + 2_000 * 15 + 10_000 * 0.3 + 4_000 * 3.75,
    );
    // claude-opus-4-1 must not take claude-opus-4's or claude-opus-4-5's price.
    expect(priceEntryFor(table, 'claude-opus-4-0', day)?.family).toBe('claude-opus-4');
    expect(priceEntryFor(table, 'claude-opus-4-1-20250805', day)?.family).toBe('claude-opus-4-1');
    expect(priceEntryFor(table, 'claude-opus-4-5-20251101', day)?.input).toBe(5);
    expect(priceEntryFor(table, 'claude-opus-4-20250514', day)?.input).toBe(15);
  });

  it('bills a Sonnet 4.5 request past 200K prompt tokens at the long-context rate', () => {
    const long = {
      ...usage('claude-sonnet-4-5'),
      inputTokens: 150_000,
      cacheReadTokens: 60_000,
      cacheCreationTokens: 0,
    };
    expect(costMicroUsd(buildPriceTable(), long)).toBe(150_000 * 6 + 2_000 * 22.5 + 60_000 * 0.6);
  });

  it('adds the regional premium on Bedrock only, and not for a global profile', () => {
    const table = buildPriceTable();
    const plan = 1_000 * 3 + 2_000 * 15 + 10_000 * 0.3 + 4_000 * 3.75;
    expect(costMicroUsd(table, usage('claude-sonnet-4-5'))).toBe(plan);
    expect(costMicroUsd(table, usage('global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'))).toBe(plan);
    expect(costMicroUsd(table, usage('us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'))).toBe(
      Math.round(plan * 1.1),
    );
    // Older generations have one price everywhere.
    expect(costMicroUsd(table, usage('us.anthropic.claude-sonnet-4-20250514-v1:0', 'bedrock'))).toBe(plan);
  });

  it('leaves an unknown model unpriced rather than free', () => {
    expect(costMicroUsd(buildPriceTable(), usage('gpt-5'))).toBeUndefined();
    expect(costMicroUsd(buildPriceTable(), usage(null))).toBeUndefined();
    expect(costMicroUsd(buildPriceTable(), usage('claude-sonnet-4-9'))).toBeUndefined();
  });

  it('applies an override file: a dated change from its day on, a new model, the built-in prices before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prices-'));
    const file = join(dir, 'prices.json');
    writeFileSync(
      file,
      JSON.stringify({
        effectiveDate: '2026-12-01',
        source: 'our negotiated rates',
        entries: [
          {
            family: 'claude-sonnet-4-5',
            from: '2026-12-01',
            input: 2,
            output: 10,
            cacheRead: 0.2,
            cacheWrite5m: 2.5,
            cacheWrite1h: 4,
          },
          {
            family: 'claude-internal',
            from: '2026-01-01',
            input: 1,
            output: 1,
            cacheRead: 0,
            cacheWrite5m: 0,
            cacheWrite1h: 0,
          },
        ],
      }),
    );
    const table = loadPriceTable(file);
    expect(table.sources).toEqual(['our negotiated rates', defaultPriceTable.source]);
    expect(priceEntryFor(table, 'claude-sonnet-4-5', day)?.input).toBe(2);
    expect(priceEntryFor(table, 'claude-sonnet-4-5', Date.parse('2026-11-30T23:00:00Z'))?.input).toBe(3);
    expect(costMicroUsd(table, usage('claude-internal'))).toBe(3_000);
  });

  it('looks a model up once per day, and a dated change still applies from its first second on', () => {
    const table = buildPriceTable({
      effectiveDate: '2026-12-08',
      entries: [
        {
          family: 'claude-sonnet-4-5',
          from: '2026-12-08',
          input: 2,
          output: 10,
          cacheRead: 0,
          cacheWrite5m: 0,
          cacheWrite1h: 0,
        },
      ],
    });
    const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const lastSecond = Date.parse('2026-12-07T23:59:59.999Z');
    // The same spelling, asked again and again within a day and then just after midnight (UTC).
    for (let i = 0; i < 3; i += 1) expect(priceEntryFor(table, model, lastSecond - i * 1000)?.input).toBe(3);
    expect(priceEntryFor(table, model, lastSecond + 1)?.input).toBe(2);
    expect(priceEntryFor(table, model, lastSecond)?.input).toBe(3);
    // Another table is its own: the first table's lookups never answer for it.
    expect(priceEntryFor(buildPriceTable(), model, lastSecond + 1)?.input).toBe(3);
    // More model spellings than the memo holds still price right (it is bounded, not a leak).
    for (let i = 0; i < 1_100; i += 1) expect(priceEntryFor(table, `claude-unknown-${i}`, lastSecond)).toBeUndefined();
    expect(priceEntryFor(table, model, lastSecond + 1)?.input).toBe(2);
  });

  it('refuses a bad override file, naming the field, so a typo never prices at zero', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prices-'));
    const cases: [string, RegExp][] = [
      ['{not json', /cannot be read as JSON/],
      [
        JSON.stringify({
          effectiveDate: '2026-12-01',
          entries: [{ family: 'claude-x', from: '2026-12-01', input: -1 }],
        }),
        /\/entries\/0/,
      ],
      [JSON.stringify({ effectiveDate: 'tomorrow', entries: [] }), /\/effectiveDate/],
      [JSON.stringify({ effectiveDate: '2026-12-01', entries: [], extra: 1 }), /CCPROXY_PRICE_TABLE_FILE/],
    ];
    for (const [text, message] of cases) {
      const file = join(dir, 'bad.json');
      writeFileSync(file, text);
      expect(() => loadPriceTable(file), text).toThrow(ConfigError);
      expect(() => loadPriceTable(file), text).toThrow(message);
    }
    expect(() => loadPriceTable(join(dir, 'missing.json'))).toThrow(ConfigError);
  });
});

describe('usage rows carry their cost', () => {
  const record = (requestId: string, modelServed: string | null, provider: 'plan' | 'bedrock'): UsageRecord => ({
    requestId,
    occurredAt: day,
    userId: '1',
    accessKeyId: '1',
    provider,
    failover: provider === 'bedrock',
    modelRequested: modelServed,
    modelServed,
    inputTokens: 1_000,
    outputTokens: 2_000,
    cacheReadTokens: 10_000,
    cacheCreationTokens: 4_000,
    latencyMs: 10,
    ttfbMs: 5,
    status: 200,
    complete: true,
  });

  it('stores each request priced, sums priced requests per bucket and counts the unpriced ones', async () => {
    const db = await openMigratedDatabase({ adminUrl: inject('postgresUrl') });
    try {
      await db.query(`INSERT INTO users (id, name) VALUES (1, 'u')`).catch(() => undefined);
      const rows = [
        record('a', 'claude-sonnet-4-5-20250929', 'plan'),
        record('b', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'),
        record('c', 'unknown-model', 'plan'),
      ];
      expect(await insertUsage(db, rows)).toBe(3);
      // A replay of the same records changes nothing: cost is counted exactly once.
      expect(await insertUsage(db, rows)).toBe(0);
      const stored = await db.query<{ request_id: string; cost: string | null }>(
        'SELECT request_id, cost_micro_usd::text AS cost FROM token_usage ORDER BY request_id',
      );
      const sonnet = 1_000 * 3 + 2_000 * 15 + 10_000 * 0.3 + 4_000 * 3.75;
      expect(stored).toEqual([
        { request_id: 'a', cost: String(sonnet) },
        { request_id: 'b', cost: String(Math.round(sonnet * 1.1)) },
        { request_id: 'c', cost: null },
      ]);
      const buckets = await db.query<{ provider: string; cost: string; unpriced: string }>(
        `SELECT provider, cost_micro_usd::text AS cost, unpriced_requests::text AS unpriced
           FROM usage_aggregates WHERE bucket = 'day' ORDER BY provider`,
      );
      expect(buckets).toEqual([
        { provider: 'bedrock', cost: String(Math.round(sonnet * 1.1)), unpriced: '0' },
        { provider: 'plan', cost: String(sonnet), unpriced: '1' },
      ]);
    } finally {
      await db.close();
    }
  });
});
