import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { parseRoleRules } from '@ccproxy/admin';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Single sign-on against a real OpenID Connect issuer (oidc-provider on loopback) and the real
 * admin process listening on a port, in local mode on a real Postgres: roles from groups, the
 * one role rule on every route, the audit trail with the identity the issuer vouched for.
 */
let admin: LocalAdmin;
let issuer: TestIssuer;
let adminUrl: string;
const accounts = {
  root: { email: 'root@example.com', name: 'Root Admin', groups: ['platform', 'everyone'] },
  ann: { email: 'ann@example.com', name: 'Ann Team', groups: ['team-a-admins', 'everyone'] },
  vic: { email: 'vic@example.com', name: 'Vic Viewer', groups: ['auditors'] },
  nobody: { email: 'nobody@example.com', name: 'No Role', groups: ['everyone'] },
};
const roles = 'platform=admin; team-a-admins=team-admin:team-a; auditors=viewer';
const sessions: Record<string, string> = {};

async function api(who: string, method: string, url: string, payload?: unknown, csrf = true) {
  const response = await fetch(`${adminUrl}${url}`, {
    method,
    headers: {
      cookie: sessions[who] as string,
      ...(csrf ? { 'x-ccproxy-csrf': '1' } : {}),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: (text === '' ? null : JSON.parse(text)) as Record<string, unknown> & Array<Record<string, unknown>>,
    range: response.headers.get('content-range'),
  };
}
const auditRows = async (filter = '') =>
  (await admin.db.query<Record<string, unknown>>(`SELECT * FROM admin_audit ${filter} ORDER BY id`)).map((row) => ({
    ...row,
  }));

beforeAll(async () => {
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, accounts);
  admin = await startLocalAdmin({
    // Many sign-ins from one address in this file: the per-client limit is tested in auth.test.ts.
    loginAttempts: 1000,
    oidc: {
      issuerUrl: issuer.url,
      clientId: issuer.clientId,
      clientSecret: issuer.clientSecret,
      redirectUrl: `${adminUrl}/admin/auth/oidc/callback`,
      scopes: 'openid email profile groups',
      groupsClaim: 'groups',
      roles: parseRoleRules(roles).rules,
    },
  });
  await admin.app.listen({ port, host: '127.0.0.1' });
  // Two teams' users, made with the break-glass password (an admin).
  const headers = await admin.auth();
  for (const [namespace, name] of [
    ['team-a', 'alice'],
    ['team-b', 'bob'],
  ])
    expect(
      (await admin.app.inject({ method: 'POST', url: '/admin/api/users', headers, payload: { namespace, name } }))
        .statusCode,
    ).toBe(201);
  // team-b's budget, which team-a's admin must neither read nor change.
  const teamB = { namespace: 'team-b', budget: { daily: { usd: 7 } } };
  expect(
    (await admin.app.inject({ method: 'POST', url: '/admin/api/team-budgets', headers, payload: teamB })).statusCode,
  ).toBe(201);
  for (const who of ['root', 'ann', 'vic']) {
    const signed = await ssoLogin(adminUrl, who);
    expect(signed.location, who).toBe(`${adminUrl}/?signed_in=sso#/`);
    sessions[who] = signed.cookie as string;
  }
}, 120_000);
afterAll(async () => {
  await admin?.close();
  await issuer?.close();
});

describe('admin single sign-on', () => {
  it('signs in with the code flow (PKCE, state, nonce) into an HttpOnly, SameSite session cookie with the role from the groups', async () => {
    const signed = await ssoLogin(adminUrl, 'root');
    expect(signed.cookieHeader).toMatch(/^ccproxy-session=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict/);
    // http here (loopback): not Secure; with an https redirect URL the cookie is __Host- and Secure (cookies.ts).
    const me = await api('root', 'GET', '/admin/auth/session');
    expect(me.body).toMatchObject({ method: 'oidc', role: 'admin', email: 'root@example.com', read: 'all' });
    expect((await api('ann', 'GET', '/admin/auth/session')).body).toMatchObject({
      role: 'team-admin',
      email: 'ann@example.com',
      read: ['team-a'],
      write: ['team-a'],
    });
    expect((await api('vic', 'GET', '/admin/auth/session')).body).toMatchObject({ role: 'viewer', write: [] });
    // The session carries no token of the issuer's, and no identity or grants either: only a
    // reference to its recorded session (admin_sessions), which holds the groups.
    const claims = decodeJwt(signed.cookie?.split('=')[1] as string);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'sub']);
  });

  it('starts the flow with PKCE (S256), state and nonce; behind TLS its cookies are Secure and the session cookie __Host-', async () => {
    const tls = await startLocalAdmin({
      oidc: {
        issuerUrl: issuer.url,
        clientId: issuer.clientId,
        redirectUrl: 'https://admin.example.com/admin/auth/oidc/callback',
        scopes: 'openid email',
        groupsClaim: 'groups',
        roles: parseRoleRules(roles).rules,
      },
    });
    try {
      const start = await tls.app.inject({ method: 'GET', url: '/admin/auth/oidc/login' });
      expect(start.statusCode).toBe(302);
      const target = new URL(start.headers.location as string);
      expect(target.origin).toBe(issuer.url);
      expect(Object.fromEntries(target.searchParams)).toMatchObject({
        response_type: 'code',
        client_id: issuer.clientId,
        redirect_uri: 'https://admin.example.com/admin/auth/oidc/callback',
        code_challenge_method: 'S256',
        code_challenge: expect.stringMatching(/^[\w-]{43}$/),
        state: expect.stringMatching(/^[\w-]{22,}$/),
        nonce: expect.stringMatching(/^[\w-]{22,}$/),
      });
      expect(start.headers['set-cookie']).toMatch(
        /^ccproxy-oidc=[\w.-]+; Path=\/admin\/auth\/oidc; HttpOnly; SameSite=Lax; Max-Age=600; Secure$/,
      );
      // The verifier never leaves in the clear: the transaction cookie is signed, and the URL has only its hash.
      const out = await tls.app.inject({ method: 'POST', url: '/admin/auth/logout', headers: await tls.auth() });
      expect(out.headers['set-cookie']).toBe(
        '__Host-ccproxy-session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure',
      );
      // A callback without the transaction cookie (another browser, or one that waited too long) signs nobody in.
      const stray = await tls.app.inject({
        method: 'GET',
        url: `/admin/auth/oidc/callback?code=x&state=${target.searchParams.get('state')}`,
      });
      expect(stray.statusCode).toBe(303);
      expect(stray.headers.location).toContain('sso_error=');
      expect(String(stray.headers['set-cookie'])).not.toContain('ccproxy-session=ey');
    } finally {
      await tls.close();
    }
  });

  it('an unreachable issuer is a clear error on the login page, and the break-glass password still works', async () => {
    const down = await startLocalAdmin({
      oidc: {
        issuerUrl: `http://127.0.0.1:${await freePort()}`,
        clientId: 'ccproxy-admin',
        redirectUrl: 'http://127.0.0.1:1/admin/auth/oidc/callback',
        scopes: 'openid',
        groupsClaim: 'groups',
        roles: parseRoleRules(roles).rules,
      },
    });
    try {
      const start = await down.app.inject({ method: 'GET', url: '/admin/auth/oidc/login' });
      expect(start.statusCode).toBe(303);
      expect(decodeURIComponent(String(start.headers.location))).toMatch(
        /^\/\?sso_error=identity provider unreachable: /,
      );
      const [row] = await down.db.query(`SELECT action, outcome, status FROM admin_audit`);
      expect(row).toEqual({ action: 'login', outcome: 'failure', status: 503 });
      const session = await down.app.inject({ method: 'GET', url: '/admin/auth/session', headers: await down.auth() });
      expect(session.json()).toMatchObject({ method: 'break-glass', role: 'admin' });
    } finally {
      await down.close();
    }
  });

  it('refuses a person whose groups map to no role, and says why', async () => {
    const signed = await ssoLogin(adminUrl, 'nobody');
    expect(signed.cookie).toBeUndefined();
    expect(decodeURIComponent(signed.location)).toContain('no admin role for groups [everyone]');
    const [row] = await auditRows(`WHERE actor_subject = 'nobody'`);
    expect(row).toMatchObject({ action: 'login', outcome: 'denied', actor_method: 'oidc', status: 403 });
  });

  it('refuses a tampered, expired, wrong-audience or wrong-nonce ID token: no session, a failure in the audit trail', async () => {
    const resign = (change: (claims: Record<string, unknown>) => Record<string, unknown>) => async (token: string) =>
      issuer.sign(change(decodeJwt(token) as Record<string, unknown>));
    const cases: Record<string, (token: string) => Promise<string>> = {
      // The issuer's token with one claim changed and its signature kept: only the JWKS check sees it.
      tampered: async (token) => {
        const [header, , signature] = token.split('.') as [string, string, string];
        const claims = { ...(decodeJwt(token) as Record<string, unknown>), groups: ['platform'] };
        return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
      },
      'signed by another key': async (token) => {
        const [header, payload] = token.split('.') as [string, string, string];
        return `${header}.${payload}.${Buffer.alloc(256, 7).toString('base64url')}`;
      },
      expired: resign((claims) => ({
        ...claims,
        iat: Math.floor(Date.now() / 1000) - 7200,
        exp: Math.floor(Date.now() / 1000) - 3600,
      })),
      'wrong audience': resign((claims) => ({ ...claims, aud: 'some-other-client' })),
      'wrong issuer': resign((claims) => ({ ...claims, iss: 'https://evil.example.com' })),
      'wrong nonce': resign((claims) => ({ ...claims, nonce: 'replayed-nonce' })),
    };
    try {
      for (const [name, tamper] of Object.entries(cases)) {
        issuer.tamper = tamper;
        const before = (await auditRows()).length;
        const signed = await ssoLogin(adminUrl, 'ann');
        expect.soft(signed.cookie, name).toBeUndefined();
        expect.soft(signed.location, name).toContain('sso_error=');
        const rows = (await auditRows()).slice(before);
        expect.soft(rows, name).toHaveLength(1);
        expect.soft(rows[0], name).toMatchObject({ action: 'login', outcome: 'failure', actor_method: 'oidc' });
      }
    } finally {
      issuer.tamper = undefined;
    }
    // And the same issuer untouched still signs in.
    expect((await ssoLogin(adminUrl, 'ann')).cookie).toBeDefined();
  });

  it('a team admin reads and changes only its namespaces: 403 JSON naming the namespace elsewhere', async () => {
    const list = await api('ann', 'GET', '/admin/api/users');
    expect(list.status).toBe(200);
    expect(list.body.map((user) => user.id)).toEqual(['team-a/alice']);
    expect(list.range).toBe('users 0-0/1');
    const refusals = [
      ['GET', '/admin/api/users/team-b%2Fbob'],
      ['GET', '/admin/api/users?namespace=team-b'],
      ['GET', '/admin/api/access-keys?userId=team-b%2Fbob'],
      ['GET', '/admin/api/usage?userId=team-b%2Fbob'],
      ['GET', '/admin/api/usage/summary?namespace=team-b'],
      ['POST', '/admin/api/users', { namespace: 'team-b', name: 'mallory' }],
      ['PUT', '/admin/api/users/team-b%2Fbob', { resourceVersion: '1', suspended: true }],
      ['DELETE', '/admin/api/users/team-b%2Fbob'],
      ['POST', '/admin/api/access-keys', { namespace: 'team-b', name: 'k', user: 'bob' }],
      ['POST', '/admin/api/access-keys/team-b%2Fk/rotate', {}],
      ['POST', '/admin/api/access-keys/team-b%2Fk/revoke', {}],
      [
        'POST',
        '/admin/api/bedrock-keys',
        { namespace: 'team-b', name: 'b', accessKey: 'k', apiKey: 'bedrock-key-123' },
      ],
      ['GET', '/admin/api/team-budgets/team-b%2Fteam'],
      ['GET', '/admin/api/team-budgets?namespace=team-b'],
      ['POST', '/admin/api/team-budgets', { namespace: 'team-b', budget: { daily: { usd: 1 } } }],
      ['PUT', '/admin/api/team-budgets/team-b%2Fteam', { resourceVersion: '1', budget: { daily: { usd: 1000 } } }],
      ['DELETE', '/admin/api/team-budgets/team-b%2Fteam'],
      // What the operator ignored names files of every namespace.
      ['GET', '/admin/api/ignored-manifests'],
    ] as const;
    for (const [method, url, payload] of refusals) {
      const answer = await api('ann', method, url, payload);
      expect.soft(answer.status, `${method} ${url}`).toBe(403);
      expect.soft(answer.body, `${method} ${url}`).toMatchObject({ statusCode: 403, error: 'forbidden' });
      expect
        .soft(String(answer.body?.message), `${method} ${url}`)
        .toMatch(/Role team-admin of ann@example.com may not/);
    }
    expect((await api('ann', 'DELETE', '/admin/api/users/team-b%2Fbob')).body.message).toContain('namespace team-b');
    // Inside team-a: everything works.
    expect((await api('ann', 'POST', '/admin/api/users', { namespace: 'team-a', name: 'carol' })).status).toBe(201);
    const issued = await api('ann', 'POST', '/admin/api/access-keys', {
      namespace: 'team-a',
      name: 'carol-laptop',
      user: 'carol',
    });
    expect(issued.status).toBe(201);
    expect((await api('ann', 'POST', '/admin/api/access-keys/team-a%2Fcarol-laptop/rotate', {})).status).toBe(200);
    expect((await api('ann', 'GET', '/admin/api/usage?userId=team-a%2Fcarol')).status).toBe(200);
    // Its team's budget: created, read and listed (the list holds its namespace's only).
    const budget = await api('ann', 'POST', '/admin/api/team-budgets', {
      namespace: 'team-a',
      budget: { daily: { usd: 5 } },
    });
    expect(budget.status).toBe(201);
    const budgets = await api('ann', 'GET', '/admin/api/team-budgets');
    expect(budgets.body.map((row) => row.id)).toEqual(['team-a/team']);
    // Its dashboard: usage without a filter is its one namespace's.
    expect((await api('ann', 'GET', '/admin/api/usage/summary')).status).toBe(200);
    // The request log of its own user; another namespace's is refused; the price table is no one's.
    expect((await api('ann', 'GET', '/admin/api/requests?userId=team-a%2Fcarol')).status).toBe(200);
    expect((await api('ann', 'GET', '/admin/api/requests?userId=team-b%2Fbob')).status).toBe(403);
    expect((await api('ann', 'GET', '/admin/api/prices')).status).toBe(200);
    // bob and team-b's budget are untouched.
    expect((await api('root', 'GET', '/admin/api/team-budgets/team-b%2Fteam')).body).toMatchObject({
      budget: { daily: { usd: 7 } },
    });
    expect((await api('root', 'GET', '/admin/api/users/team-b%2Fbob')).body).toMatchObject({ suspended: false });
    // Its audit trail is its namespaces' only.
    const trail = await api('ann', 'GET', '/admin/api/audit?_end=1000');
    expect(trail.status).toBe(200);
    expect(new Set(trail.body.map((row) => row.namespace))).toEqual(new Set(['team-a']));
    expect((await api('ann', 'GET', '/admin/api/audit?namespace=team-b')).body).toEqual([]);
  });

  it('a viewer reads everything and is refused every write the API has (every operation of the OpenAPI document)', async () => {
    const doc = (await api('vic', 'GET', '/admin/openapi.json')).body as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const writes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/admin/api/'))
      .flatMap(([path, methods]) =>
        Object.keys(methods)
          .filter((method) => method !== 'get' && method !== 'head')
          .map((method) => [method.toUpperCase(), path.replace('{id}', encodeURIComponent('team-a/alice'))] as const),
      );
    expect(writes.length).toBeGreaterThanOrEqual(10);
    const before = (await auditRows()).length;
    for (const [method, url] of writes) {
      const answer = await api(
        'vic',
        method,
        url,
        method === 'DELETE' ? undefined : { namespace: 'team-a', name: 'x' },
      );
      expect.soft(answer.status, `${method} ${url}`).toBe(403);
      expect
        .soft(String(answer.body?.message), `${method} ${url}`)
        .toContain('Role viewer of vic@example.com is read-only');
    }
    const denied = (await auditRows()).slice(before);
    expect(denied).toHaveLength(writes.length);
    for (const row of denied)
      expect(row).toMatchObject({
        outcome: 'denied',
        actor_email: 'vic@example.com',
        actor_role: 'viewer',
        status: 403,
      });
    expect((await api('vic', 'GET', '/admin/api/users')).body.map((user) => user.id).sort()).toEqual(
      expect.arrayContaining(['team-a/alice', 'team-b/bob']),
    );
    expect((await api('vic', 'GET', '/admin/api/usage/summary')).status).toBe(200);
    expect((await api('root', 'GET', '/admin/api/users/team-a%2Falice')).status).toBe(200);
  });

  it('a write with the session cookie needs the CSRF header', async () => {
    const answer = await api('root', 'POST', '/admin/api/users', { namespace: 'team-a', name: 'csrf' }, false);
    expect(answer.status).toBe(403);
    expect(answer.body.message).toContain('X-CCProxy-CSRF');
    expect((await api('root', 'GET', '/admin/api/users/team-a%2Fcsrf')).status).toBe(404);
  });

  it('records every write with the real identity, outcome and resource, never a key', async () => {
    const created = await api('root', 'POST', '/admin/api/users', { namespace: 'team-b', name: 'dora' });
    expect(created.status).toBe(201);
    const issued = await api('root', 'POST', '/admin/api/access-keys', {
      namespace: 'team-b',
      name: 'dora-laptop',
      user: 'dora',
    });
    const key = String(issued.body.accessKey);
    const rotated = await api('root', 'POST', '/admin/api/access-keys/team-b%2Fdora-laptop/rotate', {});
    const revoked = await api('root', 'POST', '/admin/api/access-keys/team-b%2Fdora-laptop/revoke', {});
    expect([issued.status, rotated.status, revoked.status]).toEqual([201, 200, 200]);
    const conflict = await api('root', 'POST', '/admin/api/users', { namespace: 'team-b', name: 'dora' });
    expect(conflict.status).toBe(409);
    const rows = await auditRows(`WHERE namespace = 'team-b' AND name LIKE 'dora%'`);
    expect(rows.map((row) => [row.action, row.resource_kind, row.name, row.outcome])).toEqual([
      ['create', 'ProxyUser', 'dora', 'success'],
      ['create', 'AccessKey', 'dora-laptop', 'success'],
      ['rotate', 'AccessKey', 'dora-laptop', 'success'],
      ['revoke', 'AccessKey', 'dora-laptop', 'success'],
      ['create', 'ProxyUser', 'dora', 'failure'],
    ]);
    const rootSub = rows[0]?.actor_subject;
    for (const row of rows)
      expect(row).toMatchObject({ actor_method: 'oidc', actor_subject: rootSub, actor_email: 'root@example.com' });
    expect(rootSub).toBe('root');
    const everything = JSON.stringify(await auditRows());
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(String(rotated.body.accessKey));
    expect(everything).not.toContain(issuer.clientSecret);
    // The API: filtered and paged like the other lists.
    const page = await api('root', 'GET', '/admin/api/audit?actor=root%40example.com&action=create&_start=0&_end=2');
    expect(page.status).toBe(200);
    expect(page.body).toHaveLength(2);
    expect(page.range).toMatch(/^audit 0-1\/\d+$/);
    expect(page.body[0]).toMatchObject({ actorEmail: 'root@example.com', action: 'create' });
    // Free text matches who, what and where (and never silently nothing): LIKE wildcards are literal.
    const searched = await api('root', 'GET', '/admin/api/audit?q=DORA-LAP&_end=500');
    expect(searched.body.map((row) => row.action)).toEqual(['revoke', 'rotate', 'create']);
    expect((await api('root', 'GET', '/admin/api/audit?q=%25&_end=500')).body).toEqual([]);
    const failures = await api('root', 'GET', '/admin/api/audit?outcome=denied&_end=500');
    expect(failures.body.every((row) => row.outcome === 'denied')).toBe(true);
  });

  it('keeps the break-glass password working beside SSO, recorded as break-glass', async () => {
    const headers = await admin.auth();
    const session = await admin.app.inject({ method: 'GET', url: '/admin/auth/session', headers });
    expect(session.json()).toMatchObject({ method: 'break-glass', role: 'admin', username: 'admin' });
    const created = await admin.app.inject({
      method: 'POST',
      url: '/admin/api/users',
      headers,
      payload: { namespace: 'team-a', name: 'glass' },
    });
    expect(created.statusCode).toBe(201);
    const [row] = await auditRows(`WHERE name = 'glass'`);
    expect(row).toMatchObject({
      actor_method: 'break-glass',
      actor_subject: 'admin',
      action: 'create',
      outcome: 'success',
    });
    const [login] = await auditRows(`WHERE action = 'login' AND actor_method = 'break-glass' AND outcome = 'success'`);
    expect(login).toBeDefined();
    // Logging out ends the SSO cookie session too.
    const out = await api('vic', 'POST', '/admin/auth/logout');
    expect(out.status).toBe(204);
    expect((await api('vic', 'GET', '/admin/api/users')).status).toBe(401);
  });
});
