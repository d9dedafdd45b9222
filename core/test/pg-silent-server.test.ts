import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, PgDatabase } from '@ccproxy/core';

/**
 * A Postgres that goes silent (a partition, a frozen host: the connection stays open, nothing
 * answers) must not hold a query until the kernel gives up on TCP (about 15 minutes): it fails
 * after the query timeout, its connection is dropped, and once the server answers again the next
 * query works at once. A real PostgreSQL behind a TCP relay that can stop forwarding.
 */
describe('PgDatabase against a server that stops answering', () => {
  let relay: Server;
  let silent = false;
  const sockets = new Set<Socket>();
  let db: PgDatabase;

  beforeAll(async () => {
    const upstream = new URL(inject('postgresUrl'));
    relay = createServer((client) => {
      const server = connect(Number(upstream.port), upstream.hostname);
      for (const socket of [client, server]) {
        sockets.add(socket);
        socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
      }
      // Silent: every byte either way is swallowed, the connections stay open.
      client.on('data', (chunk) => void (silent || server.write(chunk)));
      server.on('data', (chunk) => void (silent || client.write(chunk)));
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const address = relay.address();
    if (address === null || typeof address === 'string') throw new Error('no relay port');
    const url = new URL(upstream);
    url.port = String(address.port);
    db = new PgDatabase({ url: url.toString(), logger: createLogger({ level: 'silent' }), queryTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    silent = false;
    await db?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => relay?.close(resolve));
  });

  it('fails a query after the query timeout, in a transaction too, and recovers at once', async () => {
    expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    silent = true;
    const started = Date.now();
    await expect(db.query('SELECT 2')).rejects.toThrow(/timeout/i);
    expect(Date.now() - started).toBeLessThan(3_000);
    silent = false;
    // The stuck connection was dropped, not handed out again: the next query is answered.
    expect(await db.query<{ three: number }>('SELECT 3 AS three')).toEqual([{ three: 3 }]);
    silent = true;
    const inTransaction = Date.now();
    await expect(db.transaction((tx) => tx.query('SELECT 4'))).rejects.toThrow(/timeout/i);
    expect(Date.now() - inTransaction).toBeLessThan(3_000);
    silent = false;
    expect(await db.transaction((tx) => tx.query<{ five: number }>('SELECT 5 AS five'))).toEqual([{ five: 5 }]);
  });
});
