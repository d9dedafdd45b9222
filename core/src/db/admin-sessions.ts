import type { Queryable } from './database.ts';

/** One admin session as recorded at sign-in (migration …_admin-sessions.sql). */
export interface AdminSessionEntry {
  id: string;
  subject: string;
  method: 'oidc' | 'break-glass';
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  /** The identity provider's groups at sign-in; the role comes from them and the current table. */
  groups: string[];
  roleAtLogin: string;
  /** Break-glass only: a fingerprint of the password hash signed in with. */
  credential: string | null;
  expiresAt: Date;
}

export interface AdminSessionRow extends Omit<AdminSessionEntry, 'expiresAt'> {
  issuedAt: string;
  expiresAt: string;
  lastSeenAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
}

/** How long expired rows are kept (the Sessions list shows active ones only). */
const keepExpired = '1 day';

export async function insertAdminSession(db: Queryable, entry: AdminSessionEntry): Promise<void> {
  await db.query(
    `INSERT INTO admin_sessions (id, subject, method, email, email_verified, name, groups, role_at_login, credential,
                                 expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10)`,
    [
      entry.id,
      entry.subject,
      entry.method,
      entry.email,
      entry.emailVerified,
      entry.name,
      entry.groups,
      entry.roleAtLogin,
      entry.credential,
      entry.expiresAt,
    ],
  );
  // Sign-ins are rare: the sweep of long-expired rows rides along, one indexed delete.
  await db.query(`DELETE FROM admin_sessions WHERE expires_at < now() - interval '${keepExpired}'`);
}

/**
 * The session's row by id (the token's `jti`), revoked or not; undefined when there is none.
 * `timeoutMs` bounds the wait (every admin request waits on it) below the database's general bound.
 */
export async function readAdminSession(
  db: Queryable,
  id: string,
  timeoutMs?: number,
): Promise<AdminSessionRow | undefined> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT * FROM admin_sessions WHERE id = $1`,
    [id],
    timeoutMs === undefined ? undefined : { timeoutMs },
  );
  return rows[0] === undefined ? undefined : toRow(rows[0]);
}

/** Last seen, coarsely: written at most once a minute per session, never on the request's path. */
export async function touchAdminSession(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE admin_sessions SET last_seen_at = now() WHERE id = $1 AND last_seen_at < now() - interval '1 minute'`,
    [id],
  );
}

/** Ends one session; the ids of those ended (empty when it was unknown, expired or ended already). */
export async function revokeAdminSession(db: Queryable, id: string, by: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `UPDATE admin_sessions SET revoked_at = now(), revoked_by = $2
      WHERE id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING id`,
    [id, by],
  );
  return rows.map((row) => row.id);
}

/** Ends every active session of a subject; the ids of those ended. */
export async function revokeSubjectSessions(db: Queryable, subject: string, by: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `UPDATE admin_sessions SET revoked_at = now(), revoked_by = $2
      WHERE subject = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING id`,
    [subject, by],
  );
  return rows.map((row) => row.id);
}

// Qualified: a bare name in ORDER BY would be the output column of that name (core/test/sql-order-by.test.ts).
const columns: Record<string, string> = {
  id: 'admin_sessions.id',
  subject: 'admin_sessions.subject',
  email: 'admin_sessions.email',
  issuedAt: 'admin_sessions.issued_at',
  expiresAt: 'admin_sessions.expires_at',
  lastSeenAt: 'admin_sessions.last_seen_at',
};
export const adminSessionSortable = Object.keys(columns);

/** Active sessions (not revoked, not expired), newest first unless sorted otherwise, and their total. */
export async function listAdminSessions(
  db: Queryable,
  filter: { subject?: string; text?: string; ids?: readonly string[] },
  page: { start: number; end: number; sort?: string; order?: 'ASC' | 'DESC' },
): Promise<{ rows: AdminSessionRow[]; total: number }> {
  const params: unknown[] = [];
  const clauses = ['revoked_at IS NULL', 'expires_at > now()'];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replaceAll('?', `$${params.length}`));
  };
  if (filter.subject !== undefined) add('subject = ?', filter.subject);
  if (filter.ids !== undefined) add('id = ANY(?::text[])', filter.ids);
  if (filter.text !== undefined)
    add(
      `concat_ws(' ', subject, email, name, role_at_login, method) ILIKE ?`,
      `%${filter.text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`,
    );
  const column = columns[page.sort ?? 'issuedAt'] ?? 'admin_sessions.issued_at';
  const direction = page.order ?? (page.sort === undefined ? 'DESC' : 'ASC');
  const where = clauses.join(' AND ');
  const rows = await db.query<Record<string, unknown>>(
    `SELECT * FROM admin_sessions WHERE ${where} ORDER BY ${column} ${direction}, admin_sessions.id ${direction}
      LIMIT ${Math.max(0, page.end - page.start)} OFFSET ${page.start}`,
    params,
  );
  const counted = await db.query<{ total: string }>(
    `SELECT count(*)::text AS total FROM admin_sessions WHERE ${where}`,
    params,
  );
  return { rows: rows.map(toRow), total: Number(counted[0]?.total ?? 0) };
}

function toRow(row: Record<string, unknown>): AdminSessionRow {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  const time = (value: unknown) => new Date(value as Date).toISOString();
  return {
    id: String(row.id),
    subject: String(row.subject),
    method: row.method === 'oidc' ? 'oidc' : 'break-glass',
    email: text(row.email),
    emailVerified: row.email_verified === true,
    name: text(row.name),
    groups: Array.isArray(row.groups) ? row.groups.map(String) : [],
    roleAtLogin: String(row.role_at_login),
    credential: text(row.credential),
    issuedAt: time(row.issued_at),
    expiresAt: time(row.expires_at),
    lastSeenAt: time(row.last_seen_at),
    revokedAt: row.revoked_at === null || row.revoked_at === undefined ? null : time(row.revoked_at),
    revokedBy: text(row.revoked_by),
  };
}
