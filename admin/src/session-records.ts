import {
  insertAdminSession,
  listAdminSessions,
  readAdminSession,
  revokeAdminSession,
  revokeSubjectSessions,
  touchAdminSession,
  type AdminSessionEntry,
  type AdminSessionRow,
  type Logger,
  type Queryable,
} from '@ccproxy/core';
import { AdminError } from './errors.ts';

export interface SessionRecordsOptions {
  /** How long a session's row read from Postgres is trusted on this replica (default 1000 ms). */
  ttlMs?: number;
  /** Rows kept in the cache at most (default 10 000); older ones are read again. */
  maxEntries?: number;
  /**
   * How long a request waits at most for its session's row (default 2000 ms) before the 503: a
   * hung database (a lock, a frozen host) must not hold every admin request for the database's
   * general query bound (30 s).
   */
  readTimeoutMs?: number;
}

interface Cached {
  row: AdminSessionRow | undefined;
  readAt: number;
}

/** How often at most a session's last-seen time is written (the list shows it to the minute). */
const touchEveryMs = 60_000;

/**
 * The admin_sessions table seen from one replica (core/src/db/admin-sessions.ts). Every request
 * needs its session's row; it is read from Postgres at most once per `ttlMs` per session and
 * replica (one primary-key lookup) and trusted in between, so a logout or an "end session" on
 * any replica reaches every other within `ttlMs` (1 s, the bar key revocation meets). A
 * revocation made here drops the cached row at once. When Postgres cannot answer, a row older
 * than `ttlMs` is never used: the request is refused with 503 (`ADM_UNAVAILABLE`), so a revoked
 * session is never accepted past the bound. Concurrent reads of one row share one query.
 */
export class SessionRecords {
  readonly #db: Queryable;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #readTimeoutMs: number;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<AdminSessionRow | undefined>>();
  readonly #touched = new Map<string, number>();

  constructor(db: Queryable, logger: Logger, options: SessionRecordsOptions = {}) {
    this.#db = db;
    this.#logger = logger;
    this.#ttlMs = options.ttlMs ?? 1000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#readTimeoutMs = options.readTimeoutMs ?? 2000;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  async record(entry: AdminSessionEntry): Promise<void> {
    await this.#guard(() => insertAdminSession(this.#db, entry), 'the session could not be recorded');
  }

  /** The session's row, at most `ttlMs` old; undefined when Postgres has none. Throws 503 when Postgres cannot answer. */
  async current(id: string): Promise<AdminSessionRow | undefined> {
    const cached = this.#cache.get(id);
    if (cached !== undefined && Date.now() - cached.readAt < this.#ttlMs) return cached.row;
    let lookup = this.#inflight.get(id);
    if (lookup === undefined) {
      lookup = this.#read(id).finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, lookup);
    }
    const row = await lookup;
    if (row !== undefined) this.#touch(row);
    return row;
  }

  async #read(id: string): Promise<AdminSessionRow | undefined> {
    const readAt = Date.now();
    const row = await this.#guard(
      () => readAdminSession(this.#db, id, this.#readTimeoutMs),
      'sessions cannot be checked',
    );
    if (this.#cache.size >= this.#maxEntries) this.#prune(readAt);
    this.#cache.set(id, { row, readAt });
    return row;
  }

  /** Ends one session everywhere; the ids ended (empty: unknown, expired or ended already). */
  async revoke(id: string, by: string): Promise<string[]> {
    const ended = await this.#guard(() => revokeAdminSession(this.#db, id, by), 'the session was not ended');
    this.#cache.delete(id);
    return ended;
  }

  /** Ends every active session of `subject` everywhere; the ids ended. */
  async revokeSubject(subject: string, by: string): Promise<string[]> {
    const ended = await this.#guard(() => revokeSubjectSessions(this.#db, subject, by), 'the sessions were not ended');
    for (const id of ended) this.#cache.delete(id);
    return ended;
  }

  list(
    filter: Parameters<typeof listAdminSessions>[1],
    page: Parameters<typeof listAdminSessions>[2],
  ): Promise<{ rows: AdminSessionRow[]; total: number }> {
    return this.#guard(() => listAdminSessions(this.#db, filter, page), 'sessions cannot be listed');
  }

  /** Last seen, coarsely and off the request's path: a failed write is only logged. */
  #touch(row: AdminSessionRow): void {
    const now = Date.now();
    if (now - Date.parse(row.lastSeenAt) < touchEveryMs || now - (this.#touched.get(row.id) ?? 0) < touchEveryMs)
      return;
    if (this.#touched.size >= this.#maxEntries) this.#touched.clear();
    this.#touched.set(row.id, now);
    touchAdminSession(this.#db, row.id).catch((error: unknown) =>
      this.#logger.warn({ err: error }, 'admin session last-seen time not written'),
    );
  }

  /**
   * A database that cannot answer (connection lost or refused, a timeout) becomes a 503 saying what
   * could not be done; any other failure (Postgres refused the statement) a 500. The cause is
   * logged, not answered.
   */
  async #guard<T>(work: () => Promise<T>, what: string): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!unreachable(error)) {
        this.#logger.error({ err: error }, `admin database error: ${what}`);
        throw new AdminError(
          'ADM_INTERNAL',
          `The admin database refused the statement, so ${what}; see the admin log.`,
        );
      }
      this.#logger.error({ err: error }, `admin database unreachable: ${what}`);
      throw new AdminError('ADM_UNAVAILABLE', `The admin database is unreachable, so ${what}; retry shortly.`);
    }
  }

  /** Drops rows past their trust window; if all are fresh (a flood of sessions), the oldest half. */
  #prune(now: number): void {
    for (const [id, cached] of this.#cache) if (now - cached.readAt >= this.#ttlMs) this.#cache.delete(id);
    if (this.#cache.size < this.#maxEntries) return;
    let drop = Math.ceil(this.#cache.size / 2);
    for (const id of this.#cache.keys()) {
      if (drop-- <= 0) break;
      this.#cache.delete(id);
    }
  }
}

/**
 * Whether a failure means the database could not answer rather than refused the statement. An
 * answer from the server carries a SQLSTATE and a severity: only one that ends the connection
 * (FATAL: a database not accepting connections, a terminated backend), connection exceptions (08),
 * insufficient resources (53), operator intervention such as a statement timeout (57) and a lock
 * not obtained (55P03) count. Anything else is the client's: a socket error (ECONNREFUSED…) or
 * pg's own (`Query read timeout`, `Connection terminated…`, `timeout exceeded when trying to connect`).
 */
function unreachable(error: unknown): boolean {
  const { code, severity, message } = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    severity?: unknown;
    message?: unknown;
  };
  if (typeof code === 'string' && typeof severity === 'string')
    return severity === 'FATAL' || severity === 'PANIC' || /^(08|53|57)/.test(code) || code === '55P03';
  return typeof code === 'string' || (typeof message === 'string' && /timeout|terminated|connect/i.test(message));
}
