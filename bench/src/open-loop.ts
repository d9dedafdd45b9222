import { Pool } from 'undici';

const headers = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench', 'anthropic-version': '2023-06-01' };
const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Open-loop load at a fixed rate: request i is due at `start + i / rate` whatever happened to
 * the ones before, and its latency counts from when it was due, not from when it was sent — so a
 * stall shows up in every request it delayed (no coordinated omission, as wrk2 measures).
 * Returns one latency (ms) per request, and how many failed.
 */
export async function openLoop(origin: string, path: string, body: string, ratePerSecond: number, durationMs: number, extraHeaders: Record<string, string> = {}): Promise<{ latencies: number[]; failures: number }> {
  const pool = new Pool(origin, { connections: 64, pipelining: 1 });
  const total = Math.round((ratePerSecond * durationMs) / 1000);
  const latencies: number[] = [];
  let failures = 0;
  const start = now() + 5;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i += 1) {
    const due = start + (i * 1000) / ratePerSecond;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait - 0.5));
    while (now() < due) {
      // Spin the last half millisecond: timers are too coarse for sub-ms schedules.
    }
    inFlight.push(
      pool
        .request({ path, method: 'POST', body, headers: { ...headers, ...extraHeaders } })
        .then(async (response) => {
          await response.body.arrayBuffer();
          if (response.statusCode === 200) latencies.push(now() - due);
          else failures += 1;
        })
        .catch(() => {
          failures += 1;
        }),
    );
  }
  await Promise.all(inFlight);
  await pool.close();
  return { latencies, failures };
}
