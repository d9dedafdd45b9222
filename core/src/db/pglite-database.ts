import type { PGlite } from '@electric-sql/pglite';
import type { Database, ListenHandlers, MigrationClient, Queryable } from './database.ts';

/** The embedded default: a WASM Postgres in this process, persisted under the data dir. */
export class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  readonly #db: PGlite;

  private constructor(db: PGlite) {
    this.#db = db;
  }

  /** `dataDir` undefined → in memory (tests). */
  static async open(dataDir?: string): Promise<PgliteDatabase> {
    // Loaded here, not at import: a process on a Postgres server never needs the embedded one.
    const { PGlite: Embedded } = await import('@electric-sql/pglite');
    const db = dataDir === undefined ? new Embedded() : new Embedded(dataDir);
    await db.waitReady;
    return new PgliteDatabase(db);
  }

  async query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.#db.query<R>(sql, params as unknown[])).rows;
  }

  async exec(sql: string): Promise<void> {
    await this.#db.exec(sql);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) =>
      work({
        query: async <R extends object>(sql: string, params: readonly unknown[] = []) =>
          (await tx.query<R>(sql, params as unknown[])).rows,
      }),
    );
  }

  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    // In-process: the connection cannot be lost, so notifications cannot be missed.
    return this.#db.listen(channel, (payload) => handlers.onNotify(payload));
  }

  async migrationClient(): Promise<MigrationClient> {
    return {
      query: async (textOrConfig, values) => {
        const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
        const params = values ?? (typeof textOrConfig === 'string' ? undefined : textOrConfig.values);
        if (params !== undefined && params.length > 0) return this.#db.query(text, params);
        // Migration files hold several statements; only the simple protocol (exec) accepts that.
        const results = await this.#db.exec(text);
        return { rows: results.at(-1)?.rows ?? [] };
      },
      release: async () => undefined,
    };
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
