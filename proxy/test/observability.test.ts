import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { CloudWatchEmf } from '@ccproxy/proxy';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrock = { apiKey: 'observability-bedrock-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };

interface EmfLine {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [field: string]: unknown;
}

/** Prometheus and CloudWatch (EMF) metrics move as requests, failovers and errors happen. */
describe('metrics', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let proxy: RunningProxy;
  const lines: string[] = [];
  const emf = new CloudWatchEmf((line) => lines.push(line));

  beforeAll(async () => {
    db = await openTestDatabase();
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url },
      { cloudWatch: emf },
    );
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await db?.close();
  });

  const post = (key: string) =>
    request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
      headers: { 'x-api-key': 'k' },
    }).then(async (r) => (await r.body.text(), r.statusCode));

  it('counts one failover once, in Prometheus and in CloudWatch; errors by type; Bedrock tokens by type', async () => {
    const { key } = await seedKey(db, { bedrock });
    emf.flush();
    lines.length = 0;
    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    expect(await post(key)).toBe(200);
    anthropic.respondWith(() => ({ kind: 'error', status: 400, type: 'invalid_request_error', message: 'bad' }));
    expect(await post(key)).toBe(400);
    anthropic.respondWith(undefined);
    expect(await post('ak_unknown_key_000000000000000000000000')).toBe(404);

    // A request is metered once its answer is out, which can be just after the client read the last byte.
    const errors = () => proxy.registry.getSingleMetricAsString('ccproxy_errors_total');
    await expect
      .poll(errors, { timeout: 2_000, interval: 20 })
      .toMatch(/ccproxy_errors_total\{type="invalid_request_error",upstream="plan"\} 1/);
    expect(await errors()).toMatch(/ccproxy_errors_total\{type="not_found_error",upstream="none"\} 1/);
    expect(await proxy.registry.getSingleMetricAsString('ccproxy_failovers_total')).toMatch(
      /ccproxy_failovers_total\{reason="status_529"\} 1$/m,
    );

    emf.setCircuitOpen(0);
    emf.flush(1_800_000_000_000);
    const parsed = lines.map((line) => JSON.parse(line) as EmfLine);
    for (const line of parsed) {
      expect(line._aws.Timestamp).toBe(1_800_000_000_000);
      expect(line._aws.CloudWatchMetrics[0]?.Namespace).toBe('ClaudeCodeProxy');
      for (const metric of line._aws.CloudWatchMetrics[0]?.Metrics ?? []) expect(line[metric.Name]).toBeDefined();
    }
    expect(parsed.find((l) => l.FallbackCount !== undefined)).toMatchObject({ FallbackCount: 1, CircuitOpen: 0 });
    expect(parsed.find((l) => l.Provider === 'bedrock' && l.RequestCount !== undefined)).toMatchObject({
      RequestCount: 1,
      RequestLatency: [expect.any(Number)],
      TimeToFirstByte: [expect.any(Number)],
      // Sonnet 4.5 through a global profile: 30 input × $3 + 15 output × $15 per million tokens.
      SpendUSD: 0.000315,
      UnpricedRequests: 0,
    });
    // The refused 400 carried no tokens: not metered, so neither priced nor unpriced.
    expect(parsed.find((l) => l.Provider === 'plan' && l.RequestCount !== undefined)).toMatchObject({
      SpendUSD: 0,
      UnpricedRequests: 0,
    });
    // Every request, whatever its provider; a 4xx is the client's, not a failure.
    expect(parsed.find((l) => l.FailedRequests !== undefined)).toMatchObject({ Requests: 3, FailedRequests: 0 });
    expect(parsed.find((l) => l.ErrorType === 'invalid_request_error')).toMatchObject({
      Provider: 'plan',
      ErrorCount: 1,
    });
    expect(parsed.find((l) => l.ErrorType === 'not_found_error')).toMatchObject({ Provider: 'none', ErrorCount: 1 });
    expect(parsed.find((l) => l.TokenType === 'input')).toMatchObject({ BedrockTokensUsed: 30 });
    expect(parsed.find((l) => l.TokenType === 'output')).toMatchObject({ BedrockTokensUsed: 15 });
  });

  it('counts a failed answer whatever its provider: a 5xx, a stream cut by event: error', async () => {
    const { key } = await seedKey(db, { routing: 'PlanOnly' });
    const metered = async () =>
      (await proxy.registry.getMetricsAsJSON())
        .find((m) => m.name === 'ccproxy_requests_total')
        ?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
    const before = await metered();
    emf.flush();
    lines.length = 0;
    anthropic.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: 'boom' }));
    expect(await post(key)).toBe(500);
    // A stream that starts (200) and is cut by the upstream: the user saw a failure.
    anthropic.respondWith(() => ({
      kind: 'raw',
      chunks: [
        Buffer.from(
          'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude-test-model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n',
        ),
      ],
      then: 'reset',
    }));
    const streamed = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"claude-test-model","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
      headers: { 'x-api-key': 'k' },
    });
    expect(streamed.statusCode).toBe(200);
    expect(await streamed.body.text()).toContain('event: error');
    anthropic.respondWith(undefined);
    expect(await post(key)).toBe(200);
    await expect.poll(metered, { timeout: 2_000, interval: 20 }).toBe(before + 3);
    emf.flush(1_800_000_000_000);
    const totals = lines.map((line) => JSON.parse(line) as EmfLine).find((l) => l.FailedRequests !== undefined);
    expect(totals).toMatchObject({ Requests: 3, FailedRequests: 2 });
  });

  it('keeps at most 100 latency values per line (reservoir sample)', () => {
    const sample = new CloudWatchEmf(
      (line) => out.push(line),
      () => 0.5,
    );
    const out: string[] = [];
    for (let i = 0; i < 1000; i += 1)
      sample.observe({ provider: 'plan', latencyMs: i, ttfbMs: i / 10, failed: false, failover: false });
    sample.flush(0);
    const line = JSON.parse(out[0] ?? '{}') as {
      RequestCount: number;
      RequestLatency: number[];
      TimeToFirstByte: number[];
    };
    expect(line.RequestCount).toBe(1000);
    expect(line.RequestLatency).toHaveLength(100);
    expect(line.TimeToFirstByte).toHaveLength(100);
    // The sample reaches past the first 100 values (random() = 0.5 keeps slot ⌊seen/2⌋ while < 100).
    expect(Math.max(...line.RequestLatency)).toBeGreaterThan(99);
  });
});
