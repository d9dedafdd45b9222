import type { Queryable } from './database.ts';

/** One admin action as recorded: who, what, on which resource, and how it ended. No secrets. */
export interface AuditEntry {
  actorMethod: 'oidc' | 'break-glass' | 'anonymous';
  /** The OIDC subject, the break-glass user name, or what a failed login claimed. */
  actorSubject: string;
  actorEmail: string | null;
  actorRole: string | null;
  /** create, update, delete, rotate, revoke, suspend, unsuspend, login, logout. */
  action: string;
  resourceKind: string | null;
  namespace: string | null;
  name: string | null;
  outcome: 'success' | 'failure' | 'denied';
  status: number;
  detail: string | null;
  requestId: string | null;
}

export interface AuditRow extends AuditEntry {
  id: string;
  occurredAt: string;
}

export async function insertAudit(db: Queryable, entry: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO admin_audit (actor_method, actor_subject, actor_email, actor_role, action, resource_kind, namespace, name,
                              outcome, status, detail, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      entry.actorMethod,
      entry.actorSubject,
      entry.actorEmail,
      entry.actorRole,
      entry.action,
      entry.resourceKind,
      entry.namespace,
      entry.name,
      entry.outcome,
      entry.status,
      entry.detail,
      entry.requestId,
    ],
  );
}

export interface AuditFilter {
  from?: Date;
  to?: Date;
  actor?: string;
  action?: string;
  resourceKind?: string;
  /** Only these namespaces (a team admin's scope); undefined is every namespace and none. */
  namespaces?: readonly string[];
  outcome?: string;
  /** Free text: a case-insensitive substring of who, action, kind, namespace, name or detail. */
  text?: string;
  ids?: readonly string[];
}

/**
 * Qualified by the table's alias: a bare name in ORDER BY means the output column of that name
 * first, and the output `id` is text (`id::text`), so `id` sorted 9 before 10.
 */
const columns: Record<string, string> = {
  id: 'a.id',
  occurredAt: 'a.occurred_at',
  actorSubject: 'a.actor_subject',
  action: 'a.action',
  resourceKind: 'a.resource_kind',
  namespace: 'a.namespace',
  outcome: 'a.outcome',
};
export const auditSortable = Object.keys(columns);

/**
 * A page of the audit trail, newest first unless sorted otherwise, and the total the filter
 * matches (for Content-Range). All values are parameters; the sort column comes from a fixed map.
 */
export async function readAudit(
  db: Queryable,
  filter: AuditFilter,
  page: { start: number; end: number; sort?: string; order?: 'ASC' | 'DESC' },
): Promise<{ rows: AuditRow[]; total: number }> {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replaceAll('?', `$${params.length}`));
  };
  if (filter.from !== undefined) add('occurred_at >= ?', filter.from);
  if (filter.to !== undefined) add('occurred_at <= ?', filter.to);
  if (filter.actor !== undefined) add('(actor_subject = ? OR actor_email = ?)', filter.actor);
  if (filter.action !== undefined) add('action = ?', filter.action);
  if (filter.resourceKind !== undefined) add('resource_kind = ?', filter.resourceKind);
  if (filter.outcome !== undefined) add('outcome = ?', filter.outcome);
  if (filter.namespaces !== undefined) add('namespace = ANY(?::text[])', filter.namespaces);
  if (filter.ids !== undefined) add('id::text = ANY(?::text[])', filter.ids);
  if (filter.text !== undefined)
    add(
      `concat_ws(' ', actor_subject, actor_email, actor_role, action, resource_kind, namespace, name, outcome, detail) ILIKE ?`,
      `%${filter.text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`,
    );
  const where = clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
  const column = columns[page.sort ?? 'id'] ?? 'a.id';
  const direction = page.order ?? (page.sort === undefined ? 'DESC' : 'ASC');
  const limit = Math.max(0, page.end - page.start);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT id::text, occurred_at, actor_method, actor_subject, actor_email, actor_role, action, resource_kind, namespace,
            name, outcome, status, detail, request_id, count(*) OVER () AS total
       FROM admin_audit a ${where}
      ORDER BY ${column} ${direction}, a.id ${direction}
      LIMIT ${limit} OFFSET ${page.start}`,
    params,
  );
  let total = Number(rows[0]?.total ?? 0);
  if (rows.length === 0 && page.start > 0) {
    const counted = await db.query<{ total: string }>(
      `SELECT count(*)::text AS total FROM admin_audit ${where}`,
      params,
    );
    total = Number(counted[0]?.total ?? 0);
  }
  return { rows: rows.map(toRow), total };
}

function toRow(row: Record<string, unknown>): AuditRow {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    id: String(row.id),
    occurredAt: new Date(row.occurred_at as Date).toISOString(),
    actorMethod: row.actor_method as AuditRow['actorMethod'],
    actorSubject: String(row.actor_subject),
    actorEmail: text(row.actor_email),
    actorRole: text(row.actor_role),
    action: String(row.action),
    resourceKind: text(row.resource_kind),
    namespace: text(row.namespace),
    name: text(row.name),
    outcome: row.outcome as AuditRow['outcome'],
    status: Number(row.status),
    detail: text(row.detail),
    requestId: text(row.request_id),
  };
}
