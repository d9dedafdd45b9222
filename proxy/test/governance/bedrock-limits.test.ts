import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../proxy-fixture.ts';

const bedrock = { apiKey: 'bedrock-limit-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };

/** The Bedrock-only limits protect the shared Bedrock quota: they apply once a request goes to Bedrock, never before. */
describe('Bedrock-only rate limits', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let proxy: RunningProxy;

  beforeAll(async () => {
    db = await openTestDatabase();
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url },
      { governor: true },
    );
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await db?.close();
  });

  const send = (key: string, session: string) =>
    request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      }),
      headers: { 'x-api-key': 'sk-ant-dev', 'content-type': 'application/json', 'x-claude-code-session-id': session },
    }).then(async (response) => ({
      status: response.statusCode,
      headers: response.headers,
      body: JSON.parse(await response.body.text()) as {
        error?: { type: string; message: string };
        content?: Array<{ text?: string }>;
      },
    }));

  it('Plan traffic ignores the Bedrock limit; after failover Bedrock serves only up to it, then 429 naming it', async () => {
    const { key, namespace, name } = await seedKey(db, {
      bedrock,
      keyLimits: { rateLimits: { requestsPerMinute: 100, bedrock: { requestsPerMinute: 2 } } },
    });
    for (let i = 0; i < 5; i += 1)
      expect((await send(key, `plan-${i}`)).status, 'Plan is not held to the Bedrock limit').toBe(200);
    expect(bedrockServer.requests.length).toBe(0);

    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    try {
      const answers = [];
      for (let i = 0; i < 5; i += 1) answers.push(await send(key, `failover-${i}`));
      // A minute window may turn during the run and lease two more: at most 4 then.
      const served = answers.filter((a) => a.status === 200);
      expect(served.length).toBeGreaterThanOrEqual(2);
      expect(served.length).toBeLessThanOrEqual(bedrockServer.requests.length);
      expect(bedrockServer.requests.length, 'Bedrock saw no request past the limit').toBeLessThanOrEqual(served.length);
      const refused = answers.filter((a) => a.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]?.body.error?.type).toBe('rate_limit_error');
      expect(refused[0]?.body.error?.message).toContain(
        `Rate limit of access key ${namespace}/${name} for requests served by Bedrock reached: 2 requests per minute`,
      );
      expect(Number(refused[0]?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    } finally {
      anthropic.respondWith(undefined);
    }
  });
});
