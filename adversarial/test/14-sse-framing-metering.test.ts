import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { PlanUsageObserver } from '../../proxy/src/metering/plan-usage.ts';
import { relayBody } from '../../proxy/src/pipeline/sse-relay.ts';
import type { RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import { startHostileStack, type HostileStack } from './hostile-stack.ts';
import { chunked, head, type HostileUpstream } from './hostile-upstream.ts';

/**
 * An Anthropic Messages stream in the API's wire format (thinking with signature, text with
 * multi-byte characters and a quoted SSE snippet, a tool call in input_json_delta pieces, the
 * usage of a cached Claude Code turn), LF-framed as Anthropic sends it.
 */
const fixture = readFileSync(new URL('fixtures/anthropic-messages-stream.sse', import.meta.url), 'utf8');
const events = fixture
  .split('\n\n')
  .filter((block) => block !== '')
  .map((block) => {
    const [eventLine, dataLine] = block.split('\n');
    return { name: (eventLine ?? '').slice('event: '.length), data: JSON.parse((dataLine ?? '').slice(6)) as unknown };
  });
const expected = {
  input_tokens: 2479,
  output_tokens: 187,
  cache_creation_input_tokens: 1208,
  cache_read_input_tokens: 17842,
};

/** A small seeded generator, so a failing framing can be replayed from its seed. */
function generator(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

type Eol = '\n' | '\r' | '\r\n';

/**
 * The same events in another valid SSE framing: LF, CR, CRLF or mixed line ends; `event:` and
 * `data:` with or without the space; the JSON over several `data:` lines (joined by LF, it parses
 * to the same value); comments, `id:`, `retry:` and unknown fields; the `event` line before,
 * between or after the data lines; extra blank lines between events.
 */
function reframe(seed: number, mode?: 'lf' | 'cr' | 'crlf' | 'mixed'): Buffer {
  const random = generator(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const style = mode ?? pick(['lf', 'cr', 'crlf', 'mixed'] as const);
  let previous: Eol = '\n';
  let out = '';
  const line = (text: string) => {
    let eol: Eol =
      style === 'lf' ? '\n' : style === 'cr' ? '\r' : style === 'crlf' ? '\r\n' : pick(['\n', '\r', '\r\n']);
    // A CR then an LF would read as one CRLF: an empty line after a CR never starts with LF.
    if (text === '' && previous === '\r' && eol === '\n') eol = '\r';
    out += text + eol;
    previous = eol;
  };
  for (const { name, data } of events) {
    if (random() < 0.2) line(pick([': ping', ':', ': keep-alive 🚀']));
    const json = random() < 0.3 ? JSON.stringify(data, null, 1).split('\n') : [JSON.stringify(data)];
    const fields = json.map((part) => (random() < 0.5 ? `data: ${part}` : `data:${part}`));
    if (random() < 0.2) fields.push(`id: ${Math.floor(random() * 1000)}`);
    if (random() < 0.1) fields.push('retry: 3000');
    if (random() < 0.1) fields.push('x-unknown: field');
    if (random() < 0.1) fields.push(': a comment inside the event');
    const eventLine = random() < 0.5 ? `event: ${name}` : `event:${name}`;
    fields.splice(Math.floor(random() * (fields.length + 1)), 0, eventLine);
    for (const field of fields) line(field);
    line('');
    if (random() < 0.1) line('');
  }
  return Buffer.from(out);
}

function split(bytes: Buffer, random: () => number, pieces: number): Buffer[] {
  const cuts = [...new Set(Array.from({ length: pieces - 1 }, () => Math.floor(random() * bytes.length)))].sort(
    (a, b) => a - b,
  );
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(from, cut));
    from = cut;
  }
  return out.filter((chunk) => chunk.length > 0);
}

/** The relay itself, over a real stream standing for the client socket: what went out, and what was read. */
async function relayInProcess(chunks: Buffer[]) {
  const client = new PassThrough();
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  const observer = new PlanUsageObserver();
  const outcome = await relayBody(Readable.from(chunks), client as unknown as ServerResponse, {
    sse: true,
    requestId: 'req',
    signal: new AbortController().signal,
    observer,
  });
  return { outcome, body: Buffer.concat(received), usage: observer.usage, complete: observer.complete };
}

/** Finding 14: any valid SSE framing is metered exactly and relayed whole, event by event. */
describe('14 SSE framing and metering', () => {
  it('every framing style, split at every byte offset: identical usage, every byte relayed, complete', async () => {
    for (const [seed, mode] of [
      [1, 'lf'],
      [2, 'cr'],
      [3, 'crlf'],
      [4, 'mixed'],
    ] as const) {
      const framed = reframe(seed, mode);
      for (let at = 1; at < framed.length; at += 1) {
        const relayed = await relayInProcess([framed.subarray(0, at), framed.subarray(at)]);
        expect(relayed.usage, `${mode} cut at ${at}`).toEqual(expected);
        expect(relayed.complete && relayed.outcome === 'complete', `${mode} cut at ${at}`).toBe(true);
        expect(relayed.body.equals(framed), `${mode} cut at ${at}`).toBe(true);
      }
    }
  });

  it('500 random framings in random pieces (single bytes included): identical usage, every byte relayed', async () => {
    for (let seed = 100; seed < 600; seed += 1) {
      const framed = reframe(seed);
      const random = generator(seed * 7);
      const pieces = random() < 0.1 ? framed.length : 1 + Math.floor(random() * 40);
      const relayed = await relayInProcess(split(framed, random, pieces));
      expect(relayed.usage, `seed ${seed}`).toEqual(expected);
      expect(relayed.outcome, `seed ${seed}`).toBe('complete');
      expect(relayed.body.equals(framed), `seed ${seed}`).toBe(true);
    }
  });

  describe('through a real proxy', () => {
    let stack: HostileStack;
    let db: Database;
    let hostile: HostileUpstream;
    let proxy: RunningProxy;
    let key: string;

    beforeAll(async () => {
      ({ db, hostile, proxy, key } = stack = await startHostileStack('14'));
    });
    afterAll(async () => stack?.close());

    const post = () =>
      request(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'sk-ant-client', 'content-type': 'application/json' },
        body: '{"model":"claude-sonnet-4-5-20250929","max_tokens":10,"stream":true,"messages":[]}',
      });

    it('40 random framings split on the wire: the client gets every byte, Postgres the same usage row', async () => {
      const ids: string[] = [];
      for (let seed = 1000; seed < 1040; seed += 1) {
        const framed = reframe(seed);
        const random = generator(seed);
        const wire = chunked(split(framed, random, 1 + Math.floor(random() * 30)));
        hostile.answer({
          bytes: [
            head(200, { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked' }),
            ...split(wire, random, 20),
          ],
          then: 'end',
          delayMs: 0,
        });
        const response = await post();
        ids.push(response.headers['x-ccproxy-request-id'] as string);
        expect(Buffer.from(await response.body.arrayBuffer()).equals(framed), `seed ${seed}`).toBe(true);
      }
      let rows: Array<Record<string, unknown>> = [];
      await expect
        .poll(
          async () => {
            await proxy.usage?.flush();
            rows = await db.query(
              'SELECT input_tokens::int, output_tokens::int, cache_creation_tokens::int, cache_read_tokens::int, complete FROM token_usage WHERE request_id = ANY($1)',
              [ids],
            );
            return rows.length;
          },
          { timeout: 5_000, interval: 50 },
        )
        .toBe(ids.length);
      for (const row of rows)
        expect(row).toEqual({
          input_tokens: expected.input_tokens,
          output_tokens: expected.output_tokens,
          cache_creation_tokens: expected.cache_creation_input_tokens,
          cache_read_tokens: expected.cache_read_input_tokens,
          complete: true,
        });
    });

    it('relays a CR-framed stream event by event: the first event arrives while the upstream still holds the rest', async () => {
      const framed = reframe(7, 'cr');
      const first = framed.indexOf('\r\r') + 2;
      hostile.answer({
        bytes: [
          Buffer.concat([
            head(200, { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked' }),
            Buffer.from(`${first.toString(16)}\r\n`),
            framed.subarray(0, first),
            Buffer.from('\r\n'),
          ]),
          chunked([framed.subarray(first)]),
        ],
        then: 'end',
        delayMs: 1500,
      });
      const started = performance.now();
      const response = await post();
      const reader = response.body[Symbol.asyncIterator]();
      const firstChunk = (await reader.next()).value as Buffer;
      const firstAt = performance.now() - started;
      expect(firstChunk.equals(framed.subarray(0, first))).toBe(true);
      expect(firstAt).toBeLessThan(1000);
      const rest: Buffer[] = [firstChunk];
      for (let next = await reader.next(); next.done !== true; next = await reader.next())
        rest.push(next.value as Buffer);
      expect(Buffer.concat(rest).equals(framed)).toBe(true);
    });
  });
});
