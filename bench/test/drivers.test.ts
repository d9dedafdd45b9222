import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { eventStampPrefix, monotonicMs, streamShape, timeStream } from '../src/drivers.ts';
import { killChildren, startUpstream } from '../src/processes.ts';

afterAll(() => killChildren());

describe('timeStream event delays', () => {
  it('reads one delivery delay per stamped delta from the bench upstream, none without stamps', async () => {
    const upstream = await startUpstream();
    const client = new Client(upstream.url);
    try {
      const stamped = await timeStream(client, '/v1/messages', '{"stream":true}', streamShape(20, 2, true));
      expect(stamped.events).toBe(25);
      expect(stamped.delays).toHaveLength(20);
      for (const delay of stamped.delays) expect(delay).toBeGreaterThan(0);
      const plain = await timeStream(client, '/v1/messages', '{"stream":true}', streamShape(20, 2));
      expect(plain.events).toBe(25);
      expect(plain.delays).toHaveLength(0);
    } finally {
      await client.close();
    }
  });

  it('reads stamps cut by chunk boundaries', async () => {
    // Each event arrives in pieces: the stamp split inside its needle and inside its number,
    // 5 ms apart, then the event's end later still.
    const server = createServer((_req, res) => {
      res.socket?.setNoDelay(true);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      void (async () => {
        for (let i = 0; i < 3; i += 1) {
          const event = `event: content_block_delta\ndata: {"delta":{"text":"${eventStampPrefix}${monotonicMs().toFixed(4)}"}}\n\n`;
          const quote = event.indexOf('"}}');
          for (const piece of [event.slice(0, 30), event.slice(30, 45), event.slice(45, quote - 3)]) {
            res.write(piece);
            await sleep(5);
          }
          res.write(event.slice(quote - 3, quote + 1));
          await sleep(30);
          res.write(event.slice(quote + 1));
        }
        res.end();
      })();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const timing = await timeStream(client, '/', '{}');
      expect(timing.events).toBe(3);
      expect(timing.delays).toHaveLength(3);
      // Read once whole: after the pieces' pauses, never from a half-read number.
      for (const delay of timing.delays) expect(delay).toBeGreaterThanOrEqual(10);
    } finally {
      await client.close();
      server.close();
    }
  });
});
