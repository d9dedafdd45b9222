import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  accessKey,
  bedrockKey,
  createTestDatabase,
  documents,
  proxyUser,
  secret,
  startAnthropicServer,
  startBedrockServer,
  startCcproxy,
  type AnthropicTestServer,
  type BedrockTestServer,
  type CcproxyProcess,
  type Reply,
} from '@ccproxy/test-harness';

const windowMs = 1500;
const openMs = 2500;
const bedrockApiKey = 'bedrock-key-for-stickiness-test';
const names = ['blip', 'storm', 'spread'] as const;
const keyOf = (name: string) => `ak_sticky_${name}_key_0123456789abcdefghijk`.slice(0, 40);
const manifests = documents(
  proxyUser('team-s', 'sam'),
  ...names.flatMap((name) => [
    accessKey('team-s', name, {
      user: 'sam',
      routing: 'PlanWithFailover',
      bedrockModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    }),
    secret('team-s', name, { accessKey: keyOf(name) }),
    bedrockKey('team-s', `${name}-bedrock`, { accessKey: name, secretName: 'sticky-bedrock' }),
  ]),
  secret('team-s', 'sticky-bedrock', { apiKey: bedrockApiKey }),
);

const overloaded: Reply = { kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' };
const plan = 'Hello from the test server';
const viaBedrock = 'Hello from the Bedrock test server';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The stickiness rule with real `ccproxy` processes sharing one Postgres: a session stays on
 * Bedrock only while its key's breaker is open or inside the Plan answer's retry-after.
 */
describe('session stickiness follows the breaker, across proxy processes', () => {
  let dir: string;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let a: CcproxyProcess;
  let b: CcproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-sticky-'));
    await writeFile(join(dir, 'sam.yaml'), manifests);
    anthropic = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
    const env = {
      DATABASE_URL: await createTestDatabase(inject('postgresUrl')),
      CCPROXY_KEY_HASHER_SECRET: 'sticky-test-hasher-secret-0123456789',
      CCPROXY_DATA_DIR: join(dir, '.data'),
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      CCPROXY_BREAKER_WINDOW_MS: String(windowMs),
      CCPROXY_BREAKER_OPEN_MS: String(openMs),
    };
    // One after the other: the first start writes the data dir's generated files.
    a = await startCcproxy(['local', '--manifests', dir], env);
    b = await startCcproxy(['local', '--manifests', dir], env);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  const send = async (proxy: CcproxyProcess, name: string, session: string) => {
    const before = anthropic.requests.length;
    const response = await fetch(`${proxy.url}/ak/${keyOf(name)}/v1/messages`, {
      method: 'POST',
      body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
      headers: { 'x-api-key': 'sk-ant-x', 'x-claude-code-session-id': session },
    });
    const body = (await response.json()) as { content?: Array<{ text?: string }> };
    return { status: response.status, text: body.content?.[0]?.text, askedPlan: anthropic.requests.length > before };
  };

  it('a single 429 keeps the session on Bedrock for its retry-after, then it is back on Plan', async () => {
    anthropic.respondWith(() => ({
      kind: 'error',
      status: 429,
      type: 'rate_limit_error',
      message: 'Rate limited',
      headers: { 'retry-after': '1' },
    }));
    expect(await send(a, 'blip', 'cc-1')).toEqual({ status: 200, text: viaBedrock, askedPlan: true });
    anthropic.respondWith(undefined);
    expect(await send(a, 'blip', 'cc-1'), 'inside the retry-after').toEqual({
      status: 200,
      text: viaBedrock,
      askedPlan: false,
    });
    await sleep(1100);
    expect(await send(a, 'blip', 'cc-1'), 'past the retry-after').toEqual({ status: 200, text: plan, askedPlan: true });
  });

  it('3 failures within the window open the breaker for both processes; the half-open trial brings the session back to Plan', async () => {
    anthropic.respondWith(() => overloaded);
    for (const [proxy, session] of [
      [a, 's1'],
      [b, 's2'],
      [a, 's3'],
    ] as const)
      expect((await send(proxy, 'storm', session)).text).toBe(viaBedrock);
    // Process b hears of the breaker a opened by notification, a few ms later.
    await expect.poll(async () => (await send(b, 'storm', 's1')).askedPlan).toBe(false);
    anthropic.respondWith(undefined);
    // Open: no process asks Plan, though Plan is healthy again.
    for (const proxy of [a, b]) expect(await send(proxy, 'storm', 's1')).toMatchObject({ askedPlan: false });
    await sleep(openMs + 100);
    // The lone session itself takes the trial (it used to stay on Bedrock through half-open).
    expect(await send(a, 'storm', 's1')).toEqual({ status: 200, text: plan, askedPlan: true });
    // The other process sees it closed.
    await expect.poll(async () => (await send(b, 'storm', 's1')).text).toBe(plan);
  });

  it('failures spread beyond the window never open the breaker and never keep the session on Bedrock', async () => {
    anthropic.respondWith(() => overloaded);
    // A failure every 0.8 s for 3.2 s: never 3 within 1.5 s. Each request asks Plan first.
    for (let i = 0; i < 5; i += 1) {
      expect(await send(i % 2 === 0 ? a : b, 'spread', 'cc-2')).toEqual({
        status: 200,
        text: viaBedrock,
        askedPlan: true,
      });
      await sleep(800);
    }
    anthropic.respondWith(undefined);
    expect(await send(a, 'spread', 'cc-2')).toEqual({ status: 200, text: plan, askedPlan: true });
  });
});
