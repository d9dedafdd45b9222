import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Database } from '@ccproxy/core';
import { RateLimiter } from '@ccproxy/proxy';
import {
  createTestDatabase,
  openMigratedDatabase,
  startThrowawayPostgres,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';

/**
 * A concurrent-streams slot whose release failed (Postgres away) is released as soon as Postgres
 * is back — also while other streams are being released all the time. The retry used to wait for
 * "no release in flight", which under steady stream traffic almost never came, so the slot stayed
 * taken until its lease (60 s) ran out. The real RateLimiter on a PostgreSQL of its own.
 */
describe('stream slots released after an outage, under load', () => {
  let postgres: ThrowawayPostgres;
  let db: Database;

  beforeAll(async () => {
    postgres = await startThrowawayPostgres();
    db = await openMigratedDatabase(
      { url: await createTestDatabase(postgres.url, 'slots') },
      { reconnectDelayMs: 100 },
    );
  }, 90_000);
  afterAll(async () => {
    await db?.close();
    await postgres?.stop();
  });

  it('frees the slot within a second of the return while other slots are freed continuously', async () => {
    const limiter = new RateLimiter({
      db,
      logger: createLogger({ level: 'silent' }),
      syncMs: 100,
      slotLeaseMs: 60_000,
    });
    limiter.start();
    try {
      const held = { scope: 'key:held', label: 'key held', limits: { concurrentStreams: 1 } };
      const ticket = await limiter.admit([held]);
      await postgres.pause();
      limiter.settle(ticket, 0, 0); // its release fails: Postgres is away
      await new Promise((resolve) => setTimeout(resolve, 300));
      await postgres.resume();

      // Other keys' streams start and end all the time: a release is nearly always in flight.
      let running = true;
      const busy = async (n: number) => {
        const check = { scope: `key:busy-${n}`, label: `key busy-${n}`, limits: { concurrentStreams: 10 } };
        while (running) {
          const other = await Promise.resolve(limiter.admit([check])).catch(() => undefined);
          if (other !== undefined) limiter.settle(other, 0, 0);
        }
      };
      const load = Promise.all(Array.from({ length: 16 }, (_, n) => busy(n)));
      const back = Date.now();
      try {
        await expect
          .poll(async () => (await db.query(`SELECT 1 FROM stream_slots WHERE scope = 'key:held'`)).length, {
            timeout: 5_000,
            interval: 50,
          })
          .toBe(0);
        expect(Date.now() - back, 'released within a second of the return').toBeLessThan(1_000);
      } finally {
        running = false;
        await load;
      }
      // And the key can stream again.
      limiter.settle(await limiter.admit([held]), 0, 0);
    } finally {
      await limiter.stop();
    }
  });
});
