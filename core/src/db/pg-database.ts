import pg from 'pg';
import type { Logger } from 'pino';
import type { Database, ListenHandlers, MigrationClient, Queryable, QueryOptions } from './database.ts';

export interface PgDatabaseOptions {
  url: string;
  logger: Logger;
  maxConnections?: number;
  /** Delay before re-establishing a lost LISTEN connection. */
  reconnectDelayMs?: number;
  /**
   * How long a query (not a migration) may wait for its answer before it fails and its connection
   * is dropped (default 30 s): a server that went silent (a partition, a frozen host) must not
   * hold requests until the kernel gives up on the TCP connection, about 15 minutes.
   */
  queryTimeoutMs?: number;
}

/** A query with a read timeout (pg reads `query_timeout` per query; its types do not list it). */
function timed(text: string, values: readonly unknown[], timeoutMs: number): pg.QueryConfig {
  const config = { text, values: values as unknown[], query_timeout: timeoutMs };
  return config;
}

export class PgDatabase implements Database {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  readonly #options: PgDatabaseOptions;
  readonly #listeners = new Set<{ stop(): Promise<void> }>();
  readonly #queryTimeoutMs: number;

  constructor(options: PgDatabaseOptions) {
    this.#options = options;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 5_000,
      // A connection whose server vanished without a word is noticed by TCP keep-alive as well.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle client losing its server must not crash the process; the pool replaces it.
    this.#pool.on('error', (error) => options.logger.warn({ err: error }, 'idle postgres connection failed'));
  }

  async query<R extends object>(sql: string, params: readonly unknown[] = [], options?: QueryOptions): Promise<R[]> {
    // On a timeout the pool destroys the client rather than returning it (pg-pool releases with the error).
    const result = await this.#pool.query<R>(timed(sql, params, options?.timeoutMs ?? this.#queryTimeoutMs));
    return result.rows;
  }

  async exec(sql: string): Promise<void> {
    await this.#pool.query(sql);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    const run = async <R extends object>(sql: string, params: readonly unknown[] = [], options?: QueryOptions) =>
      (await client.query<R>(timed(sql, params, options?.timeoutMs ?? this.#queryTimeoutMs))).rows;
    let failure: Error | undefined;
    try {
      await run('BEGIN');
      const result = await work({ query: run });
      await run('COMMIT');
      return result;
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      await run('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // After a failure the connection is dropped, not reused: a timed-out query may still hold it.
      client.release(failure);
    }
  }

  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    const listener = new NotificationListener(this.#options, channel, handlers);
    await listener.start();
    this.#listeners.add(listener);
    return async () => {
      this.#listeners.delete(listener);
      await listener.stop();
    };
  }

  async migrationClient(): Promise<MigrationClient> {
    const client = await this.#pool.connect();
    return {
      query: (text, values) => client.query(text, values),
      release: async () => client.release(),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#listeners].map((listener) => listener.stop()));
    await this.#pool.end();
  }
}

/**
 * A dedicated connection holding LISTEN, re-established whenever it drops. Only the connection
 * currently held may report a loss: a failed connection attempt is ended and forgotten, so its
 * late `error`/`end` events can never tear down the connection that replaced it. TCP keep-alive
 * lets a connection whose server vanished without a word (a partition) be noticed.
 */
class NotificationListener {
  #client: pg.Client | undefined;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #options: PgDatabaseOptions;
  readonly #channel: string;
  readonly #handlers: ListenHandlers;

  constructor(options: PgDatabaseOptions, channel: string, handlers: ListenHandlers) {
    this.#options = options;
    this.#channel = channel;
    this.#handlers = handlers;
  }

  async start(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.url,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#handlers.onNotify(message.payload ?? '');
    });
    client.on('error', (error) => {
      if (this.#client !== client) return;
      this.#options.logger.warn({ err: error, channel: this.#channel }, 'postgres LISTEN connection lost');
      this.#reconnectSoon();
    });
    client.on('end', () => {
      if (this.#client === client) this.#reconnectSoon();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
    } catch (error) {
      void discard(client);
      throw error;
    }
    if (this.#stopped) {
      void discard(client);
      return;
    }
    this.#client = client;
  }

  #reconnectSoon(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const old = this.#client;
    this.#client = undefined;
    if (old !== undefined) {
      void discard(old);
      this.#handlers.onLost?.();
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.start().then(
        () => {
          if (!this.#stopped) this.#handlers.onRestored?.();
        },
        () => this.#reconnectSoon(),
      );
    }, this.#options.reconnectDelayMs ?? 500);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) await discard(client);
  }
}

/** Ends a connection we no longer want, swallowing whatever it still reports. */
function discard(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => undefined);
  return client.end().catch(() => undefined);
}
