import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  Agent,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startBedrockServer, type BedrockTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrock = {
  apiKey: 'bedrock-api-key-for-hostile-tests',
  model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
};
const ask = JSON.stringify({ model: 'claude-test-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
const sse = (events: Array<[string, object]>) =>
  events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
const started = sse([
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-test-model',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 3, output_tokens: 0 },
      },
    },
  ],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hello' } }],
]);

type Scenario = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A Plan upstream that misbehaves on purpose, one scenario per request (`x-scenario`), with the
 * real proxy, the strict Bedrock test server and the real usage recorder: what the client sees,
 * what Bedrock was asked, what the breaker counted and what was metered.
 */
describe('hostile Plan answers and clients that leave', () => {
  let db: Database;
  let plan: Server;
  let bedrockServer: BedrockTestServer;
  let proxy: RunningProxy;
  const scenarios: Record<string, Scenario> = {
    'slow-head': (_req, res) =>
      void setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 1_500),
    'sse-with-length': (_req, res) => {
      // A stream that declares its length and lacks message_stop: the proxy appends an error event.
      res
        .writeHead(200, { 'content-type': 'text/event-stream', 'content-length': Buffer.byteLength(started) })
        .end(started);
    },
    '429-broken-body': (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'content-length': '1000', 'retry-after': '7' });
      res.write('{"type":"error","error":{"type":"rate_');
      setTimeout(() => res.socket?.destroy(), 50);
    },
    '429-stalled-body': (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"type":"error"');
    },
    '429-huge-body': (_req, res) => {
      const body = JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'x'.repeat(100_000) } });
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '9' }).end(body);
    },
  };

  beforeAll(async () => {
    db = await openTestDatabase();
    plan = createServer((req, res) => {
      req.resume();
      req.once('end', () => scenarios[String(req.headers['x-scenario'])]?.(req, res));
    });
    plan.listen(0, '127.0.0.1');
    await once(plan, 'listening');
    const address = plan.address() as { port: number };
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    proxy = await startProxy(
      db,
      {
        ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${address.port}`,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
      },
      { spoolDir: await mkdtemp(join(tmpdir(), 'ccproxy-hostile-spool-')) },
    );
  });
  afterAll(async () => {
    await proxy?.close();
    plan?.closeAllConnections();
    plan?.close();
    await bedrockServer?.close();
    await db?.close();
  });

  /** Sends a request and hangs up after `afterMs`, as a user pressing Esc does. */
  const askAndLeave = async (key: string, scenario: string, afterMs: number) => {
    const { port } = new URL(proxy.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST /ak/${key}/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: sk-ant-dev\r\n` +
        `x-scenario: ${scenario}\r\ncontent-length: ${Buffer.byteLength(ask)}\r\n\r\n${ask}`,
    );
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    socket.destroy();
  };
  const post = (key: string, scenario: string) =>
    fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-dev', 'x-scenario': scenario },
      body: ask,
    });
  const rowsOf = async (namespace: string) => {
    await proxy.usage?.flush();
    return db.query<{ status: number; error_code: string | null; provider: string | null }>(
      'SELECT t.status, t.error_code, t.provider FROM token_usage t JOIN access_keys k ON k.id = t.access_key_id WHERE k.namespace = $1 ORDER BY t.occurred_at',
      [namespace],
    );
  };

  it('a client that leaves before the first byte is no Plan failure: no Bedrock call, no breaker count, one 499 row each', async () => {
    const { key, namespace } = await seedKey(db, { bedrock, namespace: 'hostile-esc' });
    const before = bedrockServer.requests.length;
    // Three leaves: the breaker's threshold (CCPROXY_BREAKER_FAILURES, 3) if they counted.
    for (let i = 0; i < 3; i += 1) await askAndLeave(key, 'slow-head', 200);
    await new Promise((resolve) => setTimeout(resolve, 1_800)); // the slow heads arrive meanwhile
    expect(bedrockServer.requests.length - before).toBe(0);
    const breaker = await db.query<{ failures: number; open: boolean }>(
      'SELECT b.consecutive_failures AS failures, b.opened_at IS NOT NULL AS open FROM circuit_breakers b JOIN access_keys k ON k.id = b.access_key_id WHERE k.namespace = $1',
      [namespace],
    );
    expect(breaker.filter((b) => b.failures > 0 || b.open)).toEqual([]);
    await expect.poll(async () => (await rowsOf(namespace)).length, { timeout: 5_000 }).toBe(3);
    expect(await rowsOf(namespace)).toEqual(
      Array(3).fill({ status: 499, error_code: 'PRX_CLIENT_CLOSED', provider: 'plan' }),
    );
    expect(proxy.logs.filter((line) => line.includes('failing over to Bedrock'))).toEqual([]);
  });

  it('an event stream that arrives with a content-length is relayed without it, so its closing error event reaches the client whole', async () => {
    const { key } = await seedKey(db, { routing: 'PlanOnly', namespace: 'hostile-cl' });
    const { port } = new URL(proxy.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const exchange = (scenario: string, body: string) =>
      new Promise<{ status: number; headers: IncomingMessage['headers']; text: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            agent,
            method: 'POST',
            path: `/ak/${key}/v1/messages`,
            headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'x-scenario': scenario },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res
              .on('data', (c: Buffer) => chunks.push(c))
              .once('end', () =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }),
              );
          },
        );
        req.once('error', reject).end(body);
      });
    try {
      const streamed = await exchange('sse-with-length', ask);
      expect(streamed.status).toBe(200);
      expect(streamed.headers['content-length']).toBeUndefined();
      expect(streamed.text.startsWith(started)).toBe(true);
      expect(streamed.text).toMatch(/event: error\ndata: \{"type":"error"/);
      // The same connection serves the next request: nothing was left over on it.
      const next = await exchange('sse-with-length', ask);
      expect(next.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it.each([
    ['429-broken-body', 'a body that breaks off'],
    ['429-stalled-body', 'a body that stalls'],
  ])('a 429 with %s (%s) still fails over to Bedrock, promptly', async (scenario) => {
    const { key } = await seedKey(db, { bedrock, namespace: `hostile-${scenario}` });
    const before = bedrockServer.requests.length;
    const startedAt = performance.now();
    const answer = await post(key, scenario);
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { type: string }).type).toBe('message');
    expect(bedrockServer.requests.length - before).toBe(1);
    expect(performance.now() - startedAt).toBeLessThan(8_000);
  });

  it('a held-back 429 too large to keep, with Bedrock refusing too, is answered as a whole 429 error in Anthropic’s shape, never cut JSON', async () => {
    const { key } = await seedKey(db, {
      bedrock: { ...bedrock, apiKey: 'a-bedrock-key-the-server-refuses' },
      namespace: 'hostile-huge',
    });
    const answer = await post(key, '429-huge-body');
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('9');
    const body = (await answer.json()) as { type: string; error: { type: string; message: string } };
    expect(body).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(body.error.message).toContain('429');
  });
});
