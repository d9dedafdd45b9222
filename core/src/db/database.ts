/**
 * The one seam between the product and Postgres. Two implementations: `PgDatabase` (a real
 * server through `pg`) and `PgliteDatabase` (the embedded default). Queries are plain SQL with
 * `$n` parameters, so both run exactly the same statements.
 */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<R[]>;
}

export interface QueryOptions {
  /**
   * How long this query may wait for its answer, in place of the database's general bound
   * (PgDatabase's `queryTimeoutMs`); on expiry it fails and its connection is dropped, not reused.
   * The embedded database answers in-process and ignores it.
   */
  timeoutMs?: number;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; resolves once listening, to a function that stops it. */
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  /** Runs a multi-statement SQL script without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** A single connection speaking `pg`'s client API, for the migration runner. */
  migrationClient(): Promise<MigrationClient>;
  close(): Promise<void>;
}

export interface ListenHandlers {
  onNotify(payload: string): void;
  /** The listening connection is gone: notifications may be missed until `onRestored`. */
  onLost?(): void;
  /** Listening again; anything may have changed meanwhile. */
  onRestored?(): void;
}

export interface MigrationClient {
  query(text: string | { text: string; values?: unknown[] }, values?: unknown[]): Promise<{ rows: unknown[] }>;
  release(): Promise<void>;
}
