import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Database } from './database.ts';
import { PgDatabase } from './pg-database.ts';
import { PgliteDatabase } from './pglite-database.ts';

/** `DATABASE_URL` set → that server; unset → the embedded PGlite under the data dir. */
export async function openDatabase(options: {
  databaseUrl?: string | undefined;
  dataDir: string;
  logger: Logger;
}): Promise<Database> {
  if (options.databaseUrl !== undefined) return new PgDatabase({ url: options.databaseUrl, logger: options.logger });
  const dir = join(options.dataDir, 'pglite');
  await mkdir(dir, { recursive: true });
  return PgliteDatabase.open(dir);
}
