import type { Client } from 'undici';

const headers = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench', 'anthropic-version': '2023-06-01' };
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** One non-streaming request; ms until the whole body has arrived. */
export async function timeJson(client: Client, path: string, body: string, extra: Record<string, string> = {}, expectStatus = 200): Promise<number> {
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
  events: number;
}

/** The upstream's stream shape, as headers (the peer drops query strings). */
export const streamShape = (events: number, gapMs = 0): Record<string, string> => ({ 'x-bench-events': String(events), 'x-bench-gap-ms': String(gapMs) });

/** One streaming request, timestamping every SSE event as it arrives. */
export async function timeStream(client: Client, path: string, body: string, extra: Record<string, string> = {}): Promise<StreamTiming> {
  const start = now();
  const response = await client.request({ path, method: 'POST', body, headers: { ...headers, ...extra } });
  if (response.statusCode !== 200) throw new Error(`${path}: HTTP ${response.statusCode}`);
  let ttfb = Number.NaN;
  let last = Number.NaN;
  let events = 0;
  const gaps: number[] = [];
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
  }
  return { ttfb, total: now() - start, gaps, events };
}
