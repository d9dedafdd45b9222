import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  accessKey,
  createTestDatabase,
  documents,
  proxyUser,
  renderSse,
  secret,
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';

const key = 'ak_rollout_process_key_0123456789abcdefgh';
const manifests = documents(
  proxyUser('team-r', 'rui'),
  accessKey('team-r', 'rui-key', { user: 'rui', routing: 'PlanOnly' }),
  secret('team-r', 'rui-key', { accessKey: key }),
);
/** A stream of 14 events, one every 120 ms: each one is in flight for about 1.7 s. */
const slowStream = renderSse({
  id: 'msg_rollout',
  type: 'message',
  role: 'assistant',
  model: 'claude-test-model',
  content: [{ type: 'text', text: 'A reply long enough to be cut if a rollout cut it.' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 11, output_tokens: 13, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
});

interface Outcome {
  readonly started: number;
  readonly ended: number;
  readonly status: number;
  readonly complete: boolean;
  /** The body's last bytes, for the failure message. */
  readonly tail: string;
  readonly by: CcproxyProcess;
}

/**
 * A rolling update as Kubernetes and the ALB run one, on real processes sharing one Postgres:
 * the old pod leaves the balancer's pool (endpoint removed, target draining), waits out its
 * preStop, gets SIGTERM and must finish every stream it holds before it exits, while its
 * replacement starts and joins. Zero cut streams, every stream metered once.
 */
describe('rolling the proxy under streaming load', () => {
  let dir: string;
  let anthropic: AnthropicTestServer;
  let env: Record<string, string>;
  let databaseUrl: string;
  const all: CcproxyProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-rollout-'));
    await writeFile(join(dir, 'rui.yaml'), manifests);
    anthropic = await startAnthropicServer();
    // ~1.2 s per stream: longer than the drain wait below by far, so streams are in flight at SIGTERM even on a loaded machine.
    anthropic.respondWith(() => ({ kind: 'raw', chunks: slowStream, delayMs: 200 }));
    databaseUrl = await createTestDatabase(inject('postgresUrl'));
    env = {
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: 'rollout-test-hasher-secret-0123456789',
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
    };
  }, 60_000);
  afterAll(async () => {
    await Promise.all(all.map((p) => p.stop()));
    await anthropic?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (name: string) => {
    const proxy = await startCcproxy(['local', '--manifests', dir], { ...env, CCPROXY_DATA_DIR: join(dir, name) });
    all.push(proxy);
    return proxy;
  };

  async function stream(by: CcproxyProcess, id: string): Promise<Outcome> {
    const started = Date.now();
    try {
      const response = await fetch(`${by.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: JSON.stringify({
          model: 'claude-test-model',
          max_tokens: 50,
          stream: true,
          messages: [{ role: 'user', content: id }],
        }),
        headers: { 'x-api-key': 'sk-ant-rollout', 'content-type': 'application/json' },
      });
      const text = await response.text();
      const complete = text.trimEnd().endsWith('data: {"type":"message_stop"}');
      return { started, ended: Date.now(), status: response.status, complete, tail: text.slice(-120), by };
    } catch (error) {
      return { started, ended: Date.now(), status: 0, complete: false, tail: String(error), by };
    }
  }

  it('cuts no stream and loses no usage record while every replica is replaced', async () => {
    const pool = [await start('a'), await start('b')];
    const outcomes: Outcome[] = [];
    let rolling = true;
    let sent = 0;
    const client = async (n: number) => {
      // Staggered: clients started together stay in phase (every stream lasts the same), and a
      // phase point inside the drain wait would leave the old process no stream at SIGTERM.
      await new Promise((resolve) => setTimeout(resolve, n * 270));
      while (rolling) {
        // The balancer sends only to targets in its pool, round robin.
        const target = pool[sent % pool.length];
        sent += 1;
        if (target === undefined) throw new Error('empty pool');
        outcomes.push(await stream(target, `client-${n}-${sent}`));
      }
    };
    const clients = Array.from({ length: 6 }, (_, n) => client(n));
    await new Promise((resolve) => setTimeout(resolve, 800));

    const stops: Array<{ proxy: CcproxyProcess; signalledAt: number; exitedAt: number; code: number | null }> = [];
    for (const name of ['a2', 'b2']) {
      const old = pool.shift();
      if (old === undefined) throw new Error('empty pool');
      // Endpoint removed and the ALB target draining (no new requests), then preStop's wait.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const signalledAt = Date.now();
      const exited = old.stop('SIGTERM').then((code) => ({ code, exitedAt: Date.now() }));
      const [{ code, exitedAt }, replacement] = await Promise.all([exited, start(name)]);
      stops.push({ proxy: old, signalledAt, exitedAt, code });
      pool.push(replacement);
      await new Promise((resolve) => setTimeout(resolve, 600));
    }
    rolling = false;
    await Promise.all(clients);

    const cut = outcomes
      .filter((o) => o.status !== 200 || !o.complete)
      .map((o) => ({ status: o.status, tail: o.tail, proxy: all.indexOf(o.by) }));
    expect(cut, 'cut or failed streams').toEqual([]);
    for (const stop of stops) {
      expect(stop.code, 'the old process exits cleanly').toBe(0);
      const held = outcomes.filter((o) => o.by === stop.proxy && o.started < stop.signalledAt);
      const inFlight = held.filter((o) => o.ended > stop.signalledAt);
      // The test is only worth something if SIGTERM arrived while streams were running.
      expect(inFlight.length, 'streams in flight at SIGTERM').toBeGreaterThan(0);
      const lastEnded = Math.max(...held.map((o) => o.ended));
      expect(lastEnded, 'the process outlived its streams').toBeLessThanOrEqual(stop.exitedAt);
      // …and left soon after the last one (not after a keep-alive timeout: 72 s before the fix).
      expect(stop.exitedAt - lastEnded, 'ms from the last stream to exit').toBeLessThan(5_000);
    }
    // Each stream was metered exactly once, including those drained at shutdown.
    await expect.poll(() => completeRows(databaseUrl), { timeout: 15_000 }).toBe(outcomes.length);
  }, 120_000);
});

async function completeRows(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM token_usage WHERE complete');
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}
