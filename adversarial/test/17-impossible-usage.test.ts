import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostileStack, type HostileStack } from './hostile-stack.ts';
import { head } from './hostile-upstream.ts';

/** A whole Messages stream whose usage fields say what the test wants (any JSON value). */
function stream(input: unknown, output: unknown, cacheRead: unknown = 0): Buffer {
  const events: Array<[string, unknown]> = [
    [
      'message_start',
      {
        type: 'message_start',
        message: {
          id: 'msg_x',
          type: 'message',
          role: 'assistant',
          model: 'claude-sonnet-4-5-20250929',
          content: [],
          stop_reason: null,
          usage: { input_tokens: input, output_tokens: 1, cache_read_input_tokens: cacheRead },
        },
      },
    ],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hi' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: output } }],
    ['message_stop', { type: 'message_stop' }],
  ];
  return Buffer.from(events.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join(''));
}

/**
 * An upstream that reports impossible token counts (negative, 1e300, fractions, strings): the
 * client still gets the answer byte for byte, every request's usage row is stored — bounded, with
 * a warning — and the rows after it too. Before, a negative count made the token counter throw
 * (the record and the rate-limit settle were skipped) and 1e300 made every retry of the usage
 * batch fail (nothing of that replica was stored again).
 */
describe('17 impossible token counts from the upstream', () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack('17');
  });
  afterAll(async () => stack?.close());

  it('relays every answer, stores every row bounded (and the next ones), and keeps /metrics working', async () => {
    const cases: Array<{ body: Buffer; stored: [number, number, number] }> = [
      { body: stream(-5, 7), stored: [0, 7, 0] },
      { body: stream(3, 1e300), stored: [3, 1_000_000_000, 0] },
      { body: stream(2.5, '12', -1), stored: [2, 1, 0] }, // a string is not a count: the start's 1 stands
      { body: stream(11, 13, 17), stored: [11, 13, 17] },
    ];
    const ids: string[] = [];
    for (const { body } of cases) {
      stack.hostile.answer({
        bytes: [head(200, { 'content-type': 'text/event-stream', 'content-length': String(body.length) }), body],
        then: 'end',
        delayMs: 0,
      });
      const response = await request(`${stack.proxy.url}/ak/${stack.key}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'sk-ant-client', 'content-type': 'application/json' },
        body: '{"model":"claude-sonnet-4-5-20250929","max_tokens":10,"stream":true,"messages":[]}',
      });
      expect(response.statusCode).toBe(200);
      expect(Buffer.from(await response.body.arrayBuffer()).equals(body)).toBe(true);
      ids.push(String(response.headers['x-ccproxy-request-id']));
    }
    let rows: Array<{ request_id: string; input: number; output: number; cache_read: number }> = [];
    await expect
      .poll(
        async () => {
          await stack.proxy.usage?.flush();
          rows = await stack.db.query(
            `SELECT request_id, input_tokens::float8 AS input, output_tokens::float8 AS output,
                    cache_read_tokens::float8 AS cache_read FROM token_usage WHERE request_id = ANY($1)`,
            [ids],
          );
          return rows.length;
        },
        { timeout: 5_000, interval: 50 },
      )
      .toBe(ids.length);
    for (const [i, { stored }] of cases.entries()) {
      const row = rows.find((r) => r.request_id === ids[i]);
      expect([row?.input, row?.output, row?.cache_read], `case ${i}`).toEqual(stored);
    }
    expect(stack.proxy.logs.filter((line) => line.includes('impossible token counts'))).toHaveLength(3);
    expect(stack.proxy.logs.filter((line) => line.includes('request handler failed'))).toEqual([]);
    const metrics = await stack.proxy.registry.metrics();
    expect(metrics).toMatch(/ccproxy_tokens_total\{[^}]*type="output"[^}]*\} 1000000021/);
  });
});
