import type { Client } from 'undici';

const headers = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench', 'anthropic-version': '2023-06-01' };
/** ms on the system's monotonic clock: one clock for the driver and the bench upstream, so an event's write and read times compare across processes. */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const now = monotonicMs;
/** What a stamped delta's text starts with, the write time after it (`x-bench-stamp: 1`). */
export const eventStampPrefix = '@t=';
const stampNeedle = Buffer.from(`"text":"${eventStampPrefix}`);
const quote = 0x22;

/** One non-streaming request; ms until the whole body has arrived. */
export async function timeJson(
  client: Client,
  path: string,
  body: string,
  extra: Record<string, string> = {},
  expectStatus = 200,
): Promise<number> {
  const start = now();
  const response = await client.request({ path, method: 'POST', body, headers: { ...headers, ...extra } });
  await response.body.arrayBuffer();
  if (response.statusCode !== expectStatus) throw new Error(`${path}: HTTP ${response.statusCode}`);
  return now() - start;
}

export interface StreamTiming {
  /** ms until the first body byte. */
  ttfb: number;
  total: number;
  /** ms between consecutive SSE events' arrival (events arriving in one chunk count as 0). */
  gaps: number[];
  /** ms from the upstream writing each stamped delta to its arrival here (empty when not stamped). */
  delays: number[];
  events: number;
}

/** The upstream's stream shape, as headers (the peer drops query strings); `stamp` asks for write times in the deltas. */
export const streamShape = (events: number, gapMs = 0, stamp = false): Record<string, string> => ({
  'x-bench-events': String(events),
  'x-bench-gap-ms': String(gapMs),
  ...(stamp ? { 'x-bench-stamp': '1' } : {}),
});

/** One streaming request, timestamping every SSE event as it arrives. */
export async function timeStream(
  client: Client,
  path: string,
  body: string,
  extra: Record<string, string> = {},
): Promise<StreamTiming> {
  const start = now();
  const response = await client.request({ path, method: 'POST', body, headers: { ...headers, ...extra } });
  if (response.statusCode !== 200) throw new Error(`${path}: HTTP ${response.statusCode}`);
  let ttfb = Number.NaN;
  let last = Number.NaN;
  let events = 0;
  const gaps: number[] = [];
  const delays: number[] = [];
  let carry: Buffer | undefined;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    const at = now();
    if (Number.isNaN(ttfb)) ttfb = at - start;
    let count = 0;
    for (let i = chunk.indexOf('\n\n'); i !== -1; i = chunk.indexOf('\n\n', i + 2)) count += 1;
    for (let k = 0; k < count; k += 1) {
      if (!Number.isNaN(last)) gaps.push(k === 0 ? at - last : 0);
      events += 1;
    }
    if (count > 0) last = at;
    carry = readStamps(carry === undefined ? chunk : Buffer.concat([carry, chunk]), at, delays);
  }
  return { ttfb, total: now() - start, gaps, delays, events };
}

/**
 * Each stamped delta in `bytes` → its delivery delay, timed at the arrival of its last byte;
 * returns what a chunk boundary cut off (a stamp begun, or the start of a needle) for the next
 * call, and nothing in the usual case, so a whole event costs no copy.
 */
function readStamps(bytes: Buffer, at: number, delays: number[]): Buffer | undefined {
  let consumed = 0;
  for (let i = bytes.indexOf(stampNeedle); i !== -1; i = bytes.indexOf(stampNeedle, consumed)) {
    const from = i + stampNeedle.length;
    const end = bytes.indexOf(quote, from);
    if (end === -1) return bytes.subarray(i);
    const written = Number(bytes.toString('latin1', from, end));
    if (Number.isFinite(written)) delays.push(at - written);
    consumed = end + 1;
  }
  // A needle cut short is shorter than the needle and begins with its quote.
  const tail = bytes.indexOf(quote, Math.max(consumed, bytes.length - stampNeedle.length + 1));
  return tail === -1 ? undefined : bytes.subarray(tail);
}
