import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { adminSessionSortable, type AdminSessionRow } from '@ccproxy/core';
import { notFound } from '../errors.ts';
import { listQuery, pageOf, sendSqlPage } from '../list.ts';
import type { SessionRecords } from '../session-records.ts';

export interface SessionRouteDeps {
  records: SessionRecords;
}

/** Only the `admin` role (access/authorize.ts): whoever holds a session may not see or end others'. */
const config = { access: 'admin' } as const;
const tags = ['sessions'];
const subject = Type.String({ minLength: 1, maxLength: 300 });
/** Any id is looked up (an unknown one is a 404): ids are UUIDs today, the schema need not say so. */
const sessionId = Type.String({ minLength: 1, maxLength: 100 });
const sessionsQuery = listQuery({ subject: Type.Optional(subject) }, adminSessionSortable);
const idParams = Type.Object({ id: sessionId }, { additionalProperties: false });
const subjectBody = Type.Object({ subject }, { additionalProperties: false });

/**
 * Admin sessions (admin_sessions, session-records.ts): the active ones, and ending one or all of
 * a person's. Ending takes effect on every replica within the session cache's bound (1 s); the
 * person's next request is a 401 and they sign in again. Ending one's own session is a logout.
 * Every end is in the audit trail (the onSend hook of audit.ts: `delete` or `revoke`, kind
 * AdminSession, name the session id or the subject).
 */
export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRouteDeps> = async (app, { records }) => {
  app.get('/admin/api/sessions', { schema: { tags, querystring: sessionsQuery }, config }, async (request, reply) => {
    const { query } = request;
    const page = pageOf(query);
    const { rows, total } = await records.list(
      {
        ...(query.subject === undefined ? {} : { subject: query.subject }),
        ...(query.q === undefined || query.q === '' ? {} : { text: query.q }),
        ...(query.id === undefined ? {} : { ids: [query.id].flat() }),
      },
      page,
    );
    return sendSqlPage(
      reply,
      'sessions',
      page.start,
      rows.map((row) => sessionView(row, request.session?.jti)),
      total,
    );
  });

  app.delete('/admin/api/sessions/:id', { schema: { tags, params: idParams }, config }, async (request) => {
    const { id } = request.params;
    request.auditTarget = { kind: 'AdminSession', namespace: null, name: id };
    const [row] = (await records.list({ ids: [id] }, { start: 0, end: 1 })).rows;
    if (row === undefined || (await records.revoke(id, request.identity?.sub ?? '')).length === 0)
      throw notFound(`Active session ${id}`);
    return sessionView(row, request.session?.jti);
  });

  app.post('/admin/api/sessions/revoke', { schema: { tags, body: subjectBody }, config }, async (request) => {
    const { subject: who } = request.body;
    request.auditTarget = { kind: 'AdminSession', namespace: null, name: who };
    const ended = await records.revokeSubject(who, request.identity?.sub ?? '');
    return { subject: who, ended };
  });
};

function sessionView(row: AdminSessionRow, current: string | undefined) {
  return {
    id: row.id,
    subject: row.subject,
    method: row.method,
    email: row.email,
    name: row.name,
    role: row.roleAtLogin,
    groups: row.groups,
    issuedAt: row.issuedAt,
    expiresAt: row.expiresAt,
    lastSeenAt: row.lastSeenAt,
    current: row.id === current,
  };
}
