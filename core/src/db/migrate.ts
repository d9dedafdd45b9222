import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';
import type { Database } from './database.ts';

const migrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

/**
 * Applies pending migrations (node-pg-migrate, plain SQL files in core/migrations). The runner
 * takes a Postgres advisory lock, so replicas starting together migrate once.
 */
export async function migrate(db: Database, logger: Logger): Promise<string[]> {
  const client = await db.migrationClient();
  try {
    const applied = await runner({
      dbClient: client as never,
      dir: migrationsDir,
      direction: 'up',
      migrationsTable: 'schema_migrations',
      count: Infinity,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      log: (message: string) => logger.debug({ component: 'migrate' }, message),
    });
    const names = applied.map((migration) => migration.name);
    if (names.length > 0) logger.info({ component: 'migrate', applied: names }, 'database migrated');
    return names;
  } finally {
    await client.release();
  }
}
