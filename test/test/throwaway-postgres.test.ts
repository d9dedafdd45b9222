import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase, startThrowawayPostgres } from '@ccproxy/test-harness';

describe('throwaway PostgreSQL', () => {
  it('is a real server, and hands out isolated databases', async () => {
    const url = await createTestDatabase(inject('postgresUrl'));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string }>('select version()');
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
      expect(url).not.toBe(inject('postgresUrl'));
    } finally {
      await client.end();
    }
  });

  it('survives pause/resume on the same port with its data, and delivers NOTIFY across connections', async () => {
    const postgres = await startThrowawayPostgres();
    try {
      const a = new pg.Client({ connectionString: postgres.url });
      await a.connect();
      await a.query('CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
      await a.end();
      await postgres.pause();
      await postgres.resume();
      const b = new pg.Client({ connectionString: postgres.url });
      const c = new pg.Client({ connectionString: postgres.url });
      await Promise.all([b.connect(), c.connect()]);
      expect((await b.query('SELECT v FROM kept')).rows).toEqual([{ v: 42 }]);
      await b.query('LISTEN news');
      const heard = new Promise<string | undefined>((resolve) =>
        b.on('notification', (message) => resolve(message.payload)),
      );
      await c.query("NOTIFY news, 'hello'");
      expect(await heard).toBe('hello');
      await Promise.all([b.end(), c.end()]);
    } finally {
      await postgres.stop();
    }
  });
});
