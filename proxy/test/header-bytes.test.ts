import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/** Raw bytes both ways: what the client's header bytes become upstream, and the upstream's header bytes at the client. */
describe('header bytes pass through unchanged', () => {
  let db: Database;
  let upstream: Server;
  let proxy: RunningProxy;
  let key: string;
  const seen: Buffer[] = [];

  beforeAll(async () => {
    db = await openTestDatabase();
    upstream = createServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(all.toString('latin1'))?.[1] ?? 0);
        if (all.length < end + 4 + length) return;
        seen.push(all);
        const body = Buffer.from(
          '{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}',
        );
        socket.end(
          Buffer.concat([
            Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-upstream-note: '),
            Buffer.from([0x63, 0x61, 0x66, 0xe9]),
            Buffer.from(`\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
            body,
          ]),
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    });
    ({ key } = await seedKey(db, { routing: 'PlanOnly' }));
  });
  afterAll(async () => {
    await proxy?.close();
    await new Promise((resolve) => upstream?.close(resolve));
    await db?.close();
  });

  it('a header value byte 0xE9 reaches the upstream as 0xE9, and comes back as 0xE9', async () => {
    const { port } = new URL(proxy.url);
    const body = '{"model":"m","max_tokens":1,"messages":[]}';
    const answer = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write(
          Buffer.concat([
            Buffer.from(
              `POST /ak/${key}/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: sk-ant-client\r\nconnection: close\r\ncontent-length: ${body.length}\r\nx-client-note: `,
            ),
            Buffer.from([0x63, 0x61, 0x66, 0xe9]),
            Buffer.from(`\r\n\r\n${body}`),
          ]),
        ),
      );
      socket.on('data', (chunk: Buffer) => chunks.push(chunk)).on('error', () => undefined);
      socket.once('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    const upstreamSaw = seen.at(-1) ?? Buffer.alloc(0);
    expect(upstreamSaw.includes(Buffer.from('x-client-note: caf\xe9', 'latin1'))).toBe(true);
    expect(answer.includes(Buffer.from('x-upstream-note: caf\xe9', 'latin1'))).toBe(true);
  });
});
