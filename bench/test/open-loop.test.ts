import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { openLoop } from '../src/open-loop.ts';

/**
 * The rate ladder's "achieved" rate is answers per second of the *sending* window: a target that
 * answers every request, each 100 ms late, kept the pace (its lateness is the p99 bound's to
 * judge). Counted until the last answer, it read below 99 % on a short rung and a side that kept
 * up was reported "not held" (the floor at 989.9 of 1,000 req/s). A real HTTP server answering
 * after 100 ms.
 */
describe('open loop: the sending window', () => {
  let server: Server;
  let pool: Pool;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      setTimeout(() => res.end('{}'), 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    pool = new Pool(`http://127.0.0.1:${port}`, { connections: 256 });
  });
  afterAll(async () => {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('counts until the last send, not the last answer; a slow answer shows in the latency', async () => {
    const run = await openLoop({ pool, path: '/', body: '{}', ratePerSecond: 200, durationMs: 1_000, pacing: 'tick' });
    expect(run.failures).toBe(0);
    expect(run.latencies).toHaveLength(200);
    expect(run.sendingMs).toBeGreaterThanOrEqual(995);
    expect(run.sendingMs).toBeLessThan(1_150);
    // The last answer came ~100 ms after the last send.
    expect(run.elapsedMs - run.sendingMs).toBeGreaterThan(80);
    // Counted until the last answer, this target that kept the pace would miss the 99 % mark.
    expect((run.latencies.length * 1000) / run.elapsedMs).toBeLessThan(0.99 * 200);
  });
});
