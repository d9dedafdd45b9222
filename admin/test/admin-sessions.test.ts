import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, openMigratedDatabase } from '@ccproxy/test-harness';
import { hashPassword, parseRoleRules, type AdminConfig } from '@ccproxy/admin';
import type { Database } from '@ccproxy/core';
import { openTestDatabase, password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Admin sessions recorded in Postgres (admin_sessions) and checked on every request through a
 * per-replica cache of at most 1 s: two admin instances on one real database, a real OpenID
 * Connect issuer, restarts, a changed role table and a changed password, the database cut.
 */
const accounts = {
  root: { email: 'root@example.com', name: 'Root Admin', groups: ['platform'] },
  ann: { email: 'ann@example.com', name: 'Ann Team', groups: ['team-a-admins'] },
  vic: { email: 'vic@example.com', name: 'Vic Viewer', groups: ['auditors'] },
  dev: { email: 'dev@example.com', name: 'Dev One', groups: ['devs'] },
  xavier: { email: 'xavier@example.com', name: 'Xavier', groups: ['platform'] },
  nul: { email: 'nul@example.com', name: 'Bad\u0000Name', groups: ['platform'] },
  nulgroup: { email: 'nulgroup@example.com', name: 'Nul Group', groups: ['platform', 'plat\u0000form'] },
};
const roles = 'platform=admin; team-a-admins=team-admin:team-a; auditors=viewer; devs=developer';
const boundMs = 1000;

let db: Database;
let issuer: TestIssuer;
let a: LocalAdmin;
let b: LocalAdmin;
let adminUrl: string;
const opened: LocalAdmin[] = [];

const oidcFor = (table: string, redirectUrl: string): AdminConfig['oidc'] => ({
  issuerUrl: issuer.url,
  clientId: issuer.clientId,
  clientSecret: issuer.clientSecret,
  redirectUrl,
  scopes: 'openid email profile groups',
  groupsClaim: 'groups',
  roles: parseRoleRules(table).rules,
});

/** Another admin replica on the same database (same session secret), closed after the file. */
async function replica(overrides: Partial<AdminConfig> = {}, database: Database = db): Promise<LocalAdmin> {
  const started = await startLocalAdmin(
    { oidc: oidcFor(roles, `${adminUrl}/admin/auth/oidc/callback`), ...overrides },
    { db: database },
  );
  opened.push(started);
  return started;
}

type Credential = { cookie: string } | { authorization: string };
async function call(on: LocalAdmin, who: Credential, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) {
  const headers = 'cookie' in who ? { cookie: who.cookie, 'x-ccproxy-csrf': '1' } : who;
  const answer = await on.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  return { status: answer.statusCode, body: answer.body === '' ? null : (answer.json() as Record<string, unknown>) };
}
const sso = async (who: keyof typeof accounts): Promise<Credential> => {
  const signed = await ssoLogin(adminUrl, who);
  expect(signed.cookie, who).toBeDefined();
  return { cookie: signed.cookie as string };
};
/** Milliseconds until `on` refuses `who` (401), polling; fails past `limitMs`. */
async function refusedWithin(on: LocalAdmin, who: Credential, limitMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const answer = await call(on, who, 'GET', '/admin/auth/session');
    if (answer.status === 401) return Date.now() - started;
    expect(answer.status).toBe(200);
    if (Date.now() - started > limitMs) throw new Error(`still accepted after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

beforeAll(async () => {
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, accounts);
  db = await openTestDatabase();
  a = await replica({ loginAttempts: 1000 });
  await a.app.listen({ port, host: '127.0.0.1' });
  b = await replica();
}, 120_000);
afterAll(async () => {
  for (const instance of opened.reverse()) await instance.close();
  await db?.close();
  await issuer?.close();
});

describe('admin sessions shared by every replica', () => {
  it('a logout on one replica is refused on the other within the 1 s bound, and at once on the first', async () => {
    const who = await a.auth();
    expect((await call(b, who, 'GET', '/admin/api/users')).status).toBe(200);
    expect((await call(a, who, 'POST', '/admin/auth/logout')).status).toBe(204);
    expect((await call(a, who, 'GET', '/admin/api/users')).status).toBe(401);
    const took = await refusedWithin(b, who, boundMs + 500);
    expect(took).toBeLessThanOrEqual(boundMs + 100);
    expect((await call(b, who, 'GET', '/admin/api/users')).body).toMatchObject({
      error: 'unauthorized',
      message: 'Session ended (logged out, or ended by an admin): log in again.',
    });
  });

  it('an admin lists the active sessions and ends all of one person’s: their next request is a 401 on both replicas', async () => {
    const root = await sso('root');
    const [first, second] = [await sso('xavier'), await sso('xavier')] as [Credential, Credential];
    for (const on of [a, b]) expect((await call(on, second, 'GET', '/admin/auth/session')).status).toBe(200);
    const listed = await call(b, root, 'GET', '/admin/api/sessions?subject=xavier');
    expect(listed.status).toBe(200);
    const rows = listed.body as unknown as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ subject: 'xavier', email: 'xavier@example.com', role: 'admin', method: 'oidc' });
    expect(Object.keys(rows[0] ?? {})).not.toContain('credential');
    const ended = await call(b, root, 'POST', '/admin/api/sessions/revoke', { subject: 'xavier' });
    expect(ended).toMatchObject({ status: 200, body: { subject: 'xavier', ended: expect.any(Array) } });
    expect((ended.body?.ended as string[]).sort()).toEqual(rows.map((row) => row.id).sort());
    // The replica that ended them refuses at once; the other within the bound.
    expect((await call(b, first, 'GET', '/admin/api/users')).status).toBe(401);
    expect(await refusedWithin(a, second, boundMs + 500)).toBeLessThanOrEqual(boundMs + 100);
    expect((await call(a, first, 'GET', '/admin/api/users')).status).toBe(401);
    expect((await call(b, root, 'GET', '/admin/api/sessions?subject=xavier')).body).toEqual([]);
    const audit = await db.query<Record<string, unknown>>(
      `SELECT actor_subject, action, resource_kind, name, outcome FROM admin_audit WHERE resource_kind = 'AdminSession'`,
    );
    expect(audit).toContainEqual({
      actor_subject: 'root',
      action: 'revoke',
      resource_kind: 'AdminSession',
      name: 'xavier',
      outcome: 'success',
    });
  });

  it('an admin ends one session by id (a second time: 404), and ending one’s own is a logout', async () => {
    const root = await sso('root');
    const ann = await sso('ann');
    const mine = (await call(a, root, 'GET', '/admin/api/sessions?subject=ann')).body as unknown as Array<{
      id: string;
    }>;
    const id = mine[0]?.id as string;
    const ended = await call(a, root, 'DELETE', `/admin/api/sessions/${id}`);
    expect(ended).toMatchObject({ status: 200, body: { id, subject: 'ann', current: false } });
    expect((await call(a, ann, 'GET', '/admin/auth/session')).status).toBe(401);
    expect(await refusedWithin(b, ann, boundMs + 500)).toBeLessThanOrEqual(boundMs + 100);
    expect((await call(a, root, 'DELETE', `/admin/api/sessions/${id}`)).status).toBe(404);
    const own = (
      (await call(a, root, 'GET', '/admin/api/sessions?subject=root')).body as unknown as Array<{
        id: string;
        current: boolean;
      }>
    ).find((row) => row.current);
    expect(own).toBeDefined();
    expect((await call(a, root, 'DELETE', `/admin/api/sessions/${own?.id as string}`)).status).toBe(200);
    expect((await call(a, root, 'GET', '/admin/api/users')).status).toBe(401);
  });

  it('refuses the session routes to team-admin, viewer and developer (403), who see nobody’s sessions', async () => {
    const root = await sso('root');
    const rootId = (
      (await call(a, root, 'GET', '/admin/api/sessions?subject=root')).body as unknown as Array<{ id: string }>
    )[0]?.id as string;
    for (const who of ['ann', 'vic', 'dev'] as const) {
      const session = await sso(who);
      for (const [method, url, payload] of [
        ['GET', '/admin/api/sessions', undefined],
        ['GET', `/admin/api/sessions?subject=${who}`, undefined],
        ['DELETE', `/admin/api/sessions/${rootId}`, undefined],
        ['POST', '/admin/api/sessions/revoke', { subject: 'root' }],
        ['POST', '/admin/api/sessions/revoke', { subject: who }],
      ] as const) {
        const answer = await call(b, session, method, url, payload);
        expect(answer.status, `${who} ${method} ${url}`).toBe(403);
        // A viewer's write is refused as every write of a read-only role is; a developer as on
        // every route that is not self-service; anything else as admin-only.
        const why =
          who === 'dev' ? 'only its own keys' : who === 'vic' && method !== 'GET' ? 'read-only' : 'only the admin role';
        expect(answer.body).toMatchObject({ error: 'forbidden', message: expect.stringContaining(why) });
      }
    }
    expect((await call(a, root, 'GET', '/admin/auth/session')).status).toBe(200);
  });

  it('names the session or subject in the audit entry of a denied session write', async () => {
    const root = await sso('root');
    const rootId = (
      (await call(a, root, 'GET', '/admin/api/sessions?subject=root')).body as unknown as Array<{ id: string }>
    )[0]?.id as string;
    const ann = await sso('ann');
    expect((await call(a, ann, 'DELETE', `/admin/api/sessions/${rootId}`)).status).toBe(403);
    expect((await call(a, ann, 'POST', '/admin/api/sessions/revoke', { subject: 'root' })).status).toBe(403);
    const rows = await db.query<{ action: string; name: string | null; resource_kind: string }>(
      `SELECT action, name, resource_kind FROM admin_audit
        WHERE actor_subject = 'ann' AND outcome = 'denied' ORDER BY id DESC LIMIT 2`,
    );
    expect(rows).toEqual([
      { action: 'revoke', name: 'root', resource_kind: 'AdminSession' },
      { action: 'delete', name: rootId, resource_kind: 'AdminSession' },
    ]);
  });

  it('clears the cookie of a dead session: a logout after an admin ended it is a 401 with Max-Age=0', async () => {
    const root = await sso('root');
    const xavier = (await sso('xavier')) as { cookie: string };
    const id = (
      (await call(a, root, 'GET', '/admin/api/sessions?subject=xavier')).body as unknown as Array<{ id: string }>
    )[0]?.id as string;
    expect((await call(a, root, 'DELETE', `/admin/api/sessions/${id}`)).status).toBe(200);
    const logout = await a.app.inject({
      method: 'POST',
      url: '/admin/auth/logout',
      headers: { cookie: xavier.cookie, 'x-ccproxy-csrf': '1' },
    });
    expect(logout.statusCode).toBe(401);
    const [name] = xavier.cookie.split('=');
    expect(logout.headers['set-cookie']).toBe(`${name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    // A bearer token carries no cookie to clear.
    const bearer = await a.auth();
    await call(a, bearer, 'POST', '/admin/auth/logout');
    const refused = await a.app.inject({ method: 'GET', url: '/admin/auth/session', headers: bearer });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['set-cookie']).toBeUndefined();
  });

  it('refuses a sign-in whose name, email or group holds a NUL, naming the claim, audited as denied', async () => {
    for (const [who, claim] of [
      ['nul', 'name'],
      ['nulgroup', 'groups'],
    ] as const) {
      const signed = await ssoLogin(adminUrl, who);
      expect(signed.cookie, who).toBeUndefined();
      const error = new URL(signed.location).searchParams.get('sso_error') ?? '';
      expect(error).toContain(`${claim} claim contains a NUL character`);
      expect(error).not.toContain('unreachable');
      const [row] = await db.query<Record<string, unknown>>(
        `SELECT action, outcome, status, detail FROM admin_audit WHERE actor_subject = $1 ORDER BY id DESC LIMIT 1`,
        [who],
      );
      expect(row).toMatchObject({ action: 'login', outcome: 'denied', status: 403 });
      expect(row?.detail).toContain(`${claim} claim contains a NUL character`);
    }
    expect(await db.query(`SELECT id FROM admin_sessions WHERE subject IN ('nul', 'nulgroup')`)).toEqual([]);
  });

  it('a changed role table reaches existing sessions at their next request', async () => {
    const ann = await sso('ann');
    expect((await call(a, ann, 'GET', '/admin/auth/session')).body).toMatchObject({
      role: 'team-admin',
      write: ['team-a'],
    });
    // The operator changes the table and restarts (a replica started with the new configuration).
    const wider = await replica({ oidc: oidcFor('team-a-admins=team-admin:team-a,team-b', `${adminUrl}/cb`) });
    expect((await call(wider, ann, 'GET', '/admin/auth/session')).body).toMatchObject({
      role: 'team-admin',
      write: ['team-a', 'team-b'],
    });
    const demoted = await replica({ oidc: oidcFor('team-a-admins=viewer', `${adminUrl}/cb`) });
    expect((await call(demoted, ann, 'GET', '/admin/auth/session')).body).toMatchObject({ role: 'viewer', write: [] });
    expect((await call(demoted, ann, 'POST', '/admin/api/users', { namespace: 'team-a', name: 'x' })).status).toBe(403);
    const dropped = await replica({ oidc: oidcFor('platform=admin', `${adminUrl}/cb`) });
    expect((await call(dropped, ann, 'GET', '/admin/auth/session')).body).toMatchObject({
      error: 'unauthorized',
      message: expect.stringContaining('no longer map to an admin role'),
    });
  });

  it('keeps revocations across a restart, and a changed break-glass password ends earlier break-glass sessions', async () => {
    const live = await a.auth();
    const loggedOut = await a.auth();
    expect((await call(a, loggedOut, 'POST', '/admin/auth/logout')).status).toBe(204);
    await b.close();
    opened.splice(opened.indexOf(b), 1);
    b = await replica();
    expect((await call(b, loggedOut, 'GET', '/admin/api/users')).status).toBe(401);
    expect((await call(b, live, 'GET', '/admin/api/users')).status).toBe(200);
    const changed = await replica({ passwordHash: await hashPassword(`${password} but new`) });
    expect((await call(changed, live, 'GET', '/admin/api/users')).body).toMatchObject({
      error: 'unauthorized',
      message: 'The break-glass password changed since this session began: log in again.',
    });
  });
});

describe('admin sessions while the database is down', () => {
  it('answers 503 unavailable (JSON, no stack) once the last check is older than the bound, and recovers', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'sessions_down');
    const name = new URL(url).pathname.slice(1);
    const own = await openMigratedDatabase({ url });
    const superuser = new pg.Client({ connectionString: inject('postgresUrl') });
    await superuser.connect();
    const cut = async (down: boolean) => {
      await superuser.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS ${down ? 'false' : 'true'}`);
      if (down)
        await superuser.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    };
    const admin = await replica({}, own);
    try {
      const who = await admin.auth();
      expect((await call(admin, who, 'GET', '/admin/auth/session')).status).toBe(200);
      await cut(true);
      await new Promise((resolve) => setTimeout(resolve, boundMs + 50));
      const refused = await admin.app.inject({ method: 'GET', url: '/admin/auth/session', headers: who });
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toEqual({
        statusCode: 503,
        error: 'unavailable',
        message: 'The admin database is unreachable, so sessions cannot be checked; retry shortly.',
      });
      const login = await admin.app.inject({
        method: 'POST',
        url: '/admin/auth/login',
        payload: { username: 'admin', password },
      });
      expect(login.statusCode).toBe(503);
      expect(login.json()).toMatchObject({ error: 'unavailable' });
      await cut(false);
      expect((await call(admin, who, 'GET', '/admin/auth/session')).status).toBe(200);
    } finally {
      await cut(false).catch(() => undefined);
      await superuser.end();
      opened.splice(opened.indexOf(admin), 1);
      await admin.close();
      await own.close();
    }
  });
});

describe('admin sessions while the database hangs', () => {
  it('answers 503 within the 2 s read bound while admin_sessions is locked, and works again once released', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'sessions_locked');
    const own = await openMigratedDatabase({ url });
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    const admin = await replica({}, own);
    try {
      const who = await admin.auth();
      expect((await call(admin, who, 'GET', '/admin/auth/session')).status).toBe(200);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE admin_sessions IN ACCESS EXCLUSIVE MODE');
      await new Promise((resolve) => setTimeout(resolve, boundMs + 50));
      const started = Date.now();
      const refused = await admin.app.inject({ method: 'GET', url: '/admin/auth/session', headers: who });
      const took = Date.now() - started;
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toMatchObject({ error: 'unavailable', message: expect.stringContaining('unreachable') });
      expect(took).toBeGreaterThanOrEqual(1900);
      expect(took).toBeLessThan(3000);
      await locker.query('ROLLBACK');
      expect((await call(admin, who, 'GET', '/admin/auth/session')).status).toBe(200);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      opened.splice(opened.indexOf(admin), 1);
      await admin.close();
      await own.close();
    }
  });
});

describe('the cost of the session check', () => {
  it('is measured: a request within the cache window, and one that reads its row from Postgres', async () => {
    const uncached = await replica({ sessionCheckMs: 0 });
    const who = await a.auth();
    const median = async (on: LocalAdmin) => {
      const times: number[] = [];
      for (let i = 0; i < 200; i += 1) {
        const started = process.hrtime.bigint();
        expect((await call(on, who, 'GET', '/admin/auth/session')).status).toBe(200);
        times.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      return times.sort((x, y) => x - y)[100] as number;
    };
    const [cached, read] = [await median(a), await median(uncached)];
    console.log(`session check: median request ${cached.toFixed(3)} ms cached, ${read.toFixed(3)} ms reading Postgres`);
    expect(read).toBeLessThan(50);
  });
});
