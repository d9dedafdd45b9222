import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoleRules } from '@ccproxy/admin';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Self-service against a real OpenID Connect issuer (oidc-provider on loopback) and the real
 * admin in local mode (manifests folder, local operator, Postgres): a developer is bound to the
 * one ProxyUser whose spec.identity names them, manages only that user's keys within the team
 * admin's limits, and is refused everything else.
 */
let admin: LocalAdmin;
let issuer: TestIssuer;
let adminUrl: string;
const accounts = {
  root: { email: 'root@example.com', name: 'Root Admin', groups: ['platform'] },
  'dev-sub-1': { email: 'dev@example.com', name: 'Dev One', groups: ['devs'] },
  'bob-sub': { email: 'bob@example.com', name: 'Bob', groups: ['devs'] },
  'eve-sub': { email: 'eve@example.com', name: 'Eve', groups: ['devs'], emailVerified: false },
  'mel-sub': { email: 'Mel@Example.com', name: 'Mel', groups: ['devs'] },
  'nolink-sub': { email: 'nolink@example.com', name: 'Nobody', groups: ['devs'] },
  // In a developer group scoped to team-a: only ProxyUsers there may link to her.
  'ann-sub': { email: 'ann@example.com', name: 'Ann', groups: ['devs-a'] },
};
const sessions: Record<string, string> = {};
const issuedKeys: string[] = [];

async function api(who: string, method: string, url: string, payload?: unknown) {
  const response = await fetch(`${adminUrl}${url}`, {
    method,
    headers: {
      cookie: sessions[who] as string,
      'x-ccproxy-csrf': '1',
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: (text === '' ? null : JSON.parse(text)) as Record<string, unknown> & Array<Record<string, unknown>>,
  };
}
const asAdmin = async (method: 'POST' | 'PUT', url: string, payload: Record<string, unknown>) =>
  admin.app.inject({ method, url, headers: await admin.auth(), payload });

async function setSelfService(user: string, selfService: Record<string, unknown> | null) {
  const current = (
    await admin.app.inject({
      method: 'GET',
      url: `/admin/api/users/${encodeURIComponent(user)}`,
      headers: await admin.auth(),
    })
  ).json() as { resourceVersion: string };
  const answer = await asAdmin('PUT', `/admin/api/users/${encodeURIComponent(user)}`, {
    resourceVersion: current.resourceVersion,
    selfService,
  });
  expect(answer.statusCode, answer.body).toBe(200);
}

beforeAll(async () => {
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, accounts);
  admin = await startLocalAdmin({
    loginAttempts: 1000,
    oidc: {
      issuerUrl: issuer.url,
      clientId: issuer.clientId,
      clientSecret: issuer.clientSecret,
      redirectUrl: `${adminUrl}/admin/auth/oidc/callback`,
      scopes: 'openid email profile groups',
      groupsClaim: 'groups',
      roles: parseRoleRules('platform=admin; devs=developer; devs-a=developer:team-a').rules,
    },
  });
  await admin.app.listen({ port, host: '127.0.0.1' });
  const users: Array<[string, string, Record<string, unknown>]> = [
    [
      'team-a',
      'dev',
      {
        identity: { subject: 'dev-sub-1' },
        selfService: { maxKeys: 2, routingModes: ['PlanOnly', 'PlanWithFailover'] },
      },
    ],
    ['team-a', 'bob', { identity: { subject: 'bob-sub' }, selfService: {} }],
    // Linked by email: only a verified one counts.
    ['team-a', 'eve', { identity: { email: 'eve@example.com' }, selfService: {} }],
    ['team-b', 'mel', { identity: { email: 'mel@example.com' }, selfService: {} }],
  ];
  for (const [namespace, name, extra] of users) {
    const created = await asAdmin('POST', '/admin/api/users', { namespace, name, ...extra });
    expect(created.statusCode, created.body).toBe(201);
  }
  // Bob's key, issued by the admin: the developer must never reach it.
  const bobKey = await asAdmin('POST', '/admin/api/access-keys', {
    namespace: 'team-a',
    name: 'bob-laptop',
    user: 'bob',
  });
  expect(bobKey.statusCode).toBe(201);
  issuedKeys.push((bobKey.json() as { accessKey: string }).accessKey);
  for (const who of Object.keys(accounts)) {
    const signed = await ssoLogin(adminUrl, who);
    expect(signed.location, who).toBe(`${adminUrl}/?signed_in=sso#/`);
    sessions[who] = signed.cookie as string;
  }
}, 120_000);
afterAll(async () => {
  await admin?.close();
  await issuer?.close();
});

describe('self-service: a developer and their own keys', () => {
  it('signs in as developer, bound to the ProxyUser whose spec.identity.subject is their sub', async () => {
    expect((await api('dev-sub-1', 'GET', '/admin/auth/session')).body).toMatchObject({
      role: 'developer',
      read: [],
      write: [],
    });
    const profile = await api('dev-sub-1', 'GET', '/admin/api/my/profile');
    expect(profile.status).toBe(200);
    expect(profile.body).toMatchObject({
      user: { id: 'team-a/dev' },
      selfService: { enabled: true, maxKeys: 2, routingModes: ['PlanOnly', 'PlanWithFailover'] },
      activeKeys: 0,
    });
  });

  it('issues a key shown once, lists it (and only theirs), rotates and revokes it; audit rows carry the identity', async () => {
    const issued = await api('dev-sub-1', 'POST', '/admin/api/my-keys', {});
    expect(issued.status).toBe(201);
    const name = issued.body.id as string;
    const key = issued.body.accessKey as string;
    issuedKeys.push(key);
    expect(name).toMatch(/^dev-[0-9a-f]{8}$/);
    expect(issued.body).toMatchObject({ key: `team-a/${name}`, routing: 'PlanOnly', user: 'dev', revoked: false });
    expect(issued.body.baseUrl).toBe(`http://proxy.test:8080/ak/${key}`);
    // Listed without the key itself; bob's key is not in the list.
    const listed = await api('dev-sub-1', 'GET', '/admin/api/my-keys');
    expect(listed.body.map((row) => row.id)).toEqual([name]);
    expect(JSON.stringify(listed.body)).not.toContain(key);

    const rotated = await api('dev-sub-1', 'POST', `/admin/api/my-keys/${name}/rotate`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.accessKey).not.toBe(key);
    issuedKeys.push(rotated.body.accessKey as string);
    const revoked = await api('dev-sub-1', 'POST', `/admin/api/my-keys/${name}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: name, revoked: true });
    // A revoked key is not rotated back to life.
    expect((await api('dev-sub-1', 'POST', `/admin/api/my-keys/${name}/rotate`)).status).toBe(409);

    const rows = await admin.db.query<Record<string, unknown>>(
      `SELECT action, resource_kind, namespace, name, outcome, actor_subject, actor_email, actor_role FROM admin_audit WHERE name = $1 ORDER BY id`,
      [name],
    );
    expect(rows.map((row) => [row.action, row.outcome])).toEqual([
      ['create', 'success'],
      ['rotate', 'success'],
      ['revoke', 'success'],
      ['rotate', 'failure'],
    ]);
    for (const row of rows)
      expect(row).toMatchObject({
        resource_kind: 'AccessKey',
        namespace: 'team-a',
        actor_subject: 'dev-sub-1',
        actor_email: 'dev@example.com',
        actor_role: 'developer',
      });
  });

  it("never reaches another user's key, whatever name it sends: the same 404 as a key that does not exist", async () => {
    const before = await admin.store.get('AccessKey', 'team-a', 'bob-laptop');
    const secretBefore = await readFile(join(admin.dataDir, 'secrets', 'team-a', 'bob-laptop-key.json'), 'utf8').catch(
      () => 'missing',
    );
    for (const [method, url] of [
      ['POST', '/admin/api/my-keys/bob-laptop/rotate'],
      ['POST', '/admin/api/my-keys/bob-laptop/revoke'],
      ['POST', '/admin/api/my-keys/no-such-key/rotate'],
    ] as const) {
      const answer = await api('dev-sub-1', method, url);
      expect(answer.status, url).toBe(404);
      expect(answer.body).toMatchObject({ error: 'not_found' });
    }
    // A namespaced id, or any other spelling, is not a key name at all.
    for (const id of ['team-a%2Fbob-laptop', 'team-b%2Fbob-laptop', '..%2Fbob-laptop'])
      expect((await api('dev-sub-1', 'POST', `/admin/api/my-keys/${id}/revoke`)).status, id).toBe(400);
    const after = await admin.store.get('AccessKey', 'team-a', 'bob-laptop');
    expect(after?.resourceVersion).toBe(before?.resourceVersion);
    expect(after?.spec.revoked).toBe(false);
    expect(
      await readFile(join(admin.dataDir, 'secrets', 'team-a', 'bob-laptop-key.json'), 'utf8').catch(() => 'missing'),
    ).toBe(secretBefore);
    // Bob sees his own key; dev's is not in his list.
    expect((await api('bob-sub', 'GET', '/admin/api/my-keys')).body.map((row) => row.id)).toEqual(['bob-laptop']);
  });

  it('refuses a developer every route that is not self-service, with ADM_FORBIDDEN, before anything is done', async () => {
    const document = (await (await fetch(`${adminUrl}/admin/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const selfService = new Set([
      '/admin/api/my/profile',
      '/admin/api/my-keys',
      '/admin/api/my-keys/{id}/rotate',
      '/admin/api/my-keys/{id}/revoke',
      '/admin/api/my-usage',
    ]);
    let checked = 0;
    for (const [path, operations] of Object.entries(document.paths)) {
      if (!path.startsWith('/admin/api/') || selfService.has(path)) continue;
      for (const method of Object.keys(operations)) {
        const url = path.replace('{id}', encodeURIComponent('team-a/bob-laptop'));
        const body =
          method === 'get' || method === 'delete' ? undefined : { namespace: 'team-a', name: 'x', user: 'dev' };
        const answer = await api('dev-sub-1', method.toUpperCase(), url, body);
        expect(answer.status, `${method} ${path}`).toBe(403);
        expect(answer.body, `${method} ${path}`).toMatchObject({
          error: 'forbidden',
          message: expect.stringContaining('Role developer of dev@example.com may use only its own keys'),
        });
        checked += 1;
      }
    }
    // Users, keys, Bedrock keys, usage, request log, breakers, audit, prices, CSV exports…
    expect(checked).toBeGreaterThan(20);
    expect((await admin.store.get('AccessKey', 'team-a', 'bob-laptop'))?.spec.revoked).toBe(false);
    expect(await admin.store.get('ProxyUser', 'team-a', 'x')).toBeUndefined();
  });

  it("refuses what the team admin's limits do not allow, naming the limit", async () => {
    const routing = await api('dev-sub-1', 'POST', '/admin/api/my-keys', { routing: 'BedrockOnly' });
    expect(routing.status).toBe(403);
    expect(routing.body).toMatchObject({
      error: 'self_service_limit',
      message:
        'Routing BedrockOnly is not allowed for your keys; allowed: PlanOnly, PlanWithFailover (ProxyUser team-a/dev selfService.routingModes).',
      problems: ['spec.selfService.routingModes'],
    });
    // maxKeys 2: the revoked key does not count; two active ones do — even when six are asked for at once.
    const racing = await Promise.all(
      Array.from({ length: 6 }, () => api('dev-sub-1', 'POST', '/admin/api/my-keys', { routing: 'PlanWithFailover' })),
    );
    expect(racing.map((answer) => answer.status).sort()).toEqual([201, 201, 403, 403, 403, 403]);
    for (const issued of racing.filter((answer) => answer.status === 201))
      issuedKeys.push(issued.body.accessKey as string);
    const third = await api('dev-sub-1', 'POST', '/admin/api/my-keys', {});
    expect(third.status).toBe(403);
    expect(third.body).toMatchObject({
      error: 'self_service_limit',
      message:
        'You already hold 2 active keys, the most your team admin allows (2); revoke one first (ProxyUser team-a/dev selfService.maxKeys).',
      problems: ['spec.selfService.maxKeys'],
    });
    const mine = (await api('dev-sub-1', 'GET', '/admin/api/my-keys')).body.filter((row) => row.revoked === false);
    expect(mine).toHaveLength(2);
    // Switched off: no issue, no rotate; revoke stays (a leaked key can always be killed).
    await setSelfService('team-a/dev', { enabled: false });
    const off = await api('dev-sub-1', 'POST', `/admin/api/my-keys/${mine[0]?.id as string}/rotate`);
    expect(off.status).toBe(403);
    expect(off.body).toMatchObject({ error: 'self_service_limit', problems: ['spec.selfService.enabled'] });
    expect((await api('dev-sub-1', 'POST', '/admin/api/my-keys', {})).body).toMatchObject({
      problems: ['spec.selfService.enabled'],
    });
    expect((await api('dev-sub-1', 'POST', `/admin/api/my-keys/${mine[0]?.id as string}/revoke`)).status).toBe(200);
    // No selfService at all is off too.
    await setSelfService('team-a/dev', null);
    expect((await api('dev-sub-1', 'POST', '/admin/api/my-keys', {})).status).toBe(403);
    const denied = await admin.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM admin_audit WHERE actor_subject = 'dev-sub-1' AND outcome = 'denied' AND namespace = 'team-a'`,
    );
    expect(denied[0]?.n).toBeGreaterThanOrEqual(5);
  });

  it('bounds an issue-and-revoke loop: ten times maxKeys keys, revoked included, then a 403 naming why', async () => {
    await setSelfService('team-a/dev', { enabled: true, maxKeys: 1, routingModes: ['PlanOnly'] });
    const mine = async () => (await api('dev-sub-1', 'GET', '/admin/api/my-keys')).body;
    for (const key of await mine())
      if (key.revoked === false) await api('dev-sub-1', 'POST', `/admin/api/my-keys/${key.id as string}/revoke`);
    let refused: { status: number; body: Record<string, unknown> } | undefined;
    for (let i = 0; i < 12 && refused === undefined; i += 1) {
      const issued = await api('dev-sub-1', 'POST', '/admin/api/my-keys', {});
      if (issued.status !== 201) refused = issued;
      else
        expect((await api('dev-sub-1', 'POST', `/admin/api/my-keys/${issued.body.id as string}/revoke`)).status).toBe(
          200,
        );
    }
    expect((await mine()).length).toBe(10);
    expect(refused).toMatchObject({
      status: 403,
      body: {
        error: 'self_service_limit',
        message:
          'You have 10 keys, revoked ones included, the most self-service keeps (10 × maxKeys = 10); ask your team admin to delete revoked keys (ProxyUser team-a/dev selfService.maxKeys).',
        problems: ['spec.selfService.maxKeys'],
      },
    });
  });

  it('links by email only when the issuer verified it; no link, or break-glass, is a 403 naming why', async () => {
    // mel's issuer spells the email Mel@Example.com, verified: it matches mel@example.com.
    expect((await api('mel-sub', 'GET', '/admin/api/my/profile')).body).toMatchObject({ user: { id: 'team-b/mel' } });
    const eve = await api('eve-sub', 'GET', '/admin/api/my-keys');
    expect(eve.status).toBe(403);
    expect(eve.body).toMatchObject({
      error: 'forbidden',
      message: expect.stringContaining(
        'eve@example.com has no ProxyUser linked to it (spec.identity.subject "eve-sub")',
      ),
    });
    expect((await api('nolink-sub', 'POST', '/admin/api/my-keys', {})).body).toMatchObject({ error: 'forbidden' });
    const glass = await admin.app.inject({ method: 'GET', url: '/admin/api/my-keys', headers: await admin.auth() });
    expect(glass.statusCode).toBe(403);
    expect(glass.json()).toMatchObject({ message: expect.stringContaining('self-service needs single sign-on') });
    // Two users claiming one identity: refused, never a guess.
    const twin = await asAdmin('POST', '/admin/api/users', {
      namespace: 'team-b',
      name: 'bob-twin',
      identity: { subject: 'bob-sub' },
    });
    expect(twin.statusCode).toBe(201);
    expect((await api('bob-sub', 'GET', '/admin/api/my-keys')).body).toMatchObject({
      message: expect.stringContaining('linked to several ProxyUsers (team-a/bob, team-b/bob-twin)'),
    });
  });

  it('links a scoped developer only from the namespaces her group trusts: a claim elsewhere neither links nor blocks', async () => {
    // Whoever writes ProxyUsers in team-b claims Ann first: with a scoped group, it links nothing.
    const elsewhere = await asAdmin('POST', '/admin/api/users', {
      namespace: 'team-b',
      name: 'ann-claimed',
      identity: { subject: 'ann-sub' },
      selfService: {},
    });
    expect(elsewhere.statusCode).toBe(201);
    const before = await api('ann-sub', 'POST', '/admin/api/my-keys', {});
    expect(before.status).toBe(403);
    expect(before.body).toMatchObject({
      error: 'forbidden',
      message: expect.stringContaining(
        'spec.identity.email "ann@example.com" in namespace team-a); ask your team admin',
      ),
    });
    // Her team admin links her in team-a: that is her user, and the team-b claim is no second match.
    const own = await asAdmin('POST', '/admin/api/users', {
      namespace: 'team-a',
      name: 'ann',
      identity: { subject: 'ann-sub' },
      selfService: {},
    });
    expect(own.statusCode).toBe(201);
    expect((await api('ann-sub', 'GET', '/admin/api/my/profile')).body).toMatchObject({ user: { id: 'team-a/ann' } });
    const issued = await api('ann-sub', 'POST', '/admin/api/my-keys', {});
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    issuedKeys.push(issued.body.accessKey as string);
    const listed = await api('ann-sub', 'GET', '/admin/api/my-keys');
    expect(listed.body.map((key) => key.userId)).toEqual(['team-a/ann']);
    // An unscoped developer is still refused on a second claim (bob, above): the scope is per group.
  });

  it('refuses a session signed by an earlier release (no recorded session), and tells an admin outside developer groups why', async () => {
    // Ann's session as an earlier release signed it (audience /2, no selfServiceNamespaces), same secret.
    const old = await new SignJWT({
      method: 'oidc',
      email: 'ann@example.com',
      emailVerified: true,
      selfService: true,
      name: 'Ann',
      role: 'developer',
      read: [],
      write: [],
    })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ann-sub')
      .setIssuer('ccproxy-admin')
      .setAudience('ccproxy-admin-api/2')
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('admin-test-session-secret-0123456789abcdef'));
    for (const [method, url] of [
      ['GET', '/admin/api/my/profile'],
      ['POST', '/admin/api/my-keys'],
    ] as const) {
      const answer = await admin.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${old}` },
        ...(method === 'POST' ? { payload: {} } : {}),
      });
      // No row in admin_sessions: sign in again (its groups, and so its trusted namespaces, are unknown).
      expect(answer.statusCode).toBe(401);
      expect(answer.json()).toMatchObject({ error: 'unauthorized', message: expect.stringContaining('log in again') });
    }
    // An admin linked to a ProxyUser but in no developer group: refused, saying so.
    const linked = await asAdmin('POST', '/admin/api/users', {
      namespace: 'team-a',
      name: 'root-user',
      identity: { subject: 'root' },
      selfService: {},
    });
    expect(linked.statusCode).toBe(201);
    const root = await api('root', 'GET', '/admin/api/my-keys');
    expect(root.status).toBe(403);
    expect(root.body).toMatchObject({
      message: 'root@example.com is in no developer group (CCPROXY_ADMIN_OIDC_ROLES): My keys is for developer groups.',
    });
  });

  it('never writes a key to a log, the manifests folder or the audit trail', async () => {
    expect(issuedKeys.length).toBeGreaterThanOrEqual(4);
    const manifests = await Promise.all(
      (await readdir(admin.manifestsDir, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => readFile(join(entry.parentPath, entry.name), 'utf8')),
    );
    const audit = JSON.stringify(await admin.db.query('SELECT * FROM admin_audit'));
    for (const key of issuedKeys) {
      expect(admin.logs.join('\n')).not.toContain(key);
      expect(admin.logs.join('\n')).not.toContain(key.slice(-20));
      expect(manifests.join('\n')).not.toContain(key);
      expect(audit).not.toContain(key);
    }
    expect(admin.logs.length).toBeGreaterThan(0);
  });
});
