import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, SignJWT } from 'jose';
import { parseRoleRules } from '@ccproxy/admin';
import { startLocalAdmin, type LocalAdmin } from '../../admin/test/admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from '../../admin/test/oidc-issuer.ts';

/**
 * Promise: a role is what the identity provider's signed groups say, and a team admin reaches
 * nothing outside its namespaces in any spelling of a request — path encodings, react-admin's
 * JSON `filter`/`range`, id lists, usage filters — nor by forging its own session.
 */
let admin: LocalAdmin;
let issuer: TestIssuer;
let adminUrl: string;
let ann: string;
const sessionSecret = 'admin-test-session-secret-0123456789abcdef';

const get = async (url: string, cookie = ann) => {
  const response = await fetch(`${adminUrl}${url}`, { headers: { cookie } });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
};

beforeAll(async () => {
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, {
    ann: { email: 'ann@example.com', name: 'Ann', groups: ['team-a-admins'] },
  });
  admin = await startLocalAdmin({
    loginAttempts: 1000,
    sessionSecret,
    oidc: {
      issuerUrl: issuer.url,
      clientId: issuer.clientId,
      clientSecret: issuer.clientSecret,
      redirectUrl: `${adminUrl}/admin/auth/oidc/callback`,
      scopes: 'openid email profile groups',
      groupsClaim: 'groups',
      roles: parseRoleRules('platform=admin;team-a-admins=team-admin:team-a').rules,
    },
  });
  await admin.app.listen({ port, host: '127.0.0.1' });
  const headers = await admin.auth();
  for (const [namespace, name] of [
    ['team-a', 'alice'],
    ['team-b', 'bob'],
  ]) {
    await admin.app.inject({ method: 'POST', url: '/admin/api/users', headers, payload: { namespace, name } });
    await admin.app.inject({
      method: 'POST',
      url: '/admin/api/access-keys',
      headers,
      payload: { namespace, name: `${name}-laptop`, user: name },
    });
  }
  ann = (await ssoLogin(adminUrl, 'ann')).cookie as string;
}, 120_000);
afterAll(async () => {
  await admin?.close();
  await issuer?.close();
});

describe('admin roles hold in every spelling', () => {
  it('no spelling of a read reaches team-b for team-a’s admin', async () => {
    const spellings = [
      '/admin/api/users/team-b%2Fbob',
      '/admin/api/users/team-b%2fbob',
      '/admin/api/users?namespace=team-b',
      `/admin/api/users?filter=${encodeURIComponent('{"namespace":"team-b"}')}`,
      `/admin/api/access-keys?filter=${encodeURIComponent('{"userId":"team-b/bob"}')}`,
      '/admin/api/access-keys?userId=team-b%2Fbob&namespace=team-a',
      '/admin/api/access-keys/team-b%2Fbob-laptop',
      '/admin/api/usage?accessKeyId=team-b%2Fbob-laptop',
      `/admin/api/usage?filter=${encodeURIComponent('{"userId":"team-b/bob"}')}`,
      '/admin/api/usage/summary?namespace=team-b',
    ];
    for (const url of spellings) {
      const answer = await get(url);
      expect.soft(answer.status, url).toBe(403);
      expect.soft(JSON.stringify(answer.body), url).not.toContain('"bob');
    }
    // Lists asked for the other team's ids, or paged past team-a's rows, show nothing of it.
    for (const url of [
      `/admin/api/users?filter=${encodeURIComponent('{"id":["team-b/bob","team-a/alice"]}')}`,
      `/admin/api/users?range=${encodeURIComponent('[1,5]')}`,
      '/admin/api/users?_start=0&_end=1000&_sort=namespace&_order=DESC',
      '/admin/api/access-keys?_end=1000',
      '/admin/api/bedrock-keys',
      '/admin/api/breakers',
      '/admin/api/audit?_end=1000',
    ]) {
      const answer = await get(url);
      expect.soft(answer.status, url).toBe(200);
      expect.soft(JSON.stringify(answer.body), url).not.toContain('team-b');
    }
  });

  it('a session cannot be widened: a re-signed or edited cookie is refused', async () => {
    const token = ann.split('=')[1] as string;
    const claims = decodeJwt(token);
    const [header, , signature] = token.split('.') as [string, string, string];
    const widened = Buffer.from(JSON.stringify({ ...claims, role: 'admin', read: 'all', write: 'all' })).toString(
      'base64url',
    );
    expect(
      (await get('/admin/api/users/team-b%2Fbob', `ccproxy-session=${header}.${widened}.${signature}`)).status,
    ).toBe(401);
    const foreign = await new SignJWT({ ...claims, role: 'admin', read: 'all', write: 'all' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('not-the-session-secret-0123456789abcdef'));
    expect((await get('/admin/api/users/team-b%2Fbob', `ccproxy-session=${foreign}`)).status).toBe(401);
    // The issuer's own token with an extra group (its signature kept) makes nobody an admin.
    issuer.tamper = async (idToken) => {
      const [h, , s] = idToken.split('.') as [string, string, string];
      const body = Buffer.from(JSON.stringify({ ...decodeJwt(idToken), groups: ['platform'] })).toString('base64url');
      return `${h}.${body}.${s}`;
    };
    try {
      expect((await ssoLogin(adminUrl, 'ann')).cookie).toBeUndefined();
    } finally {
      issuer.tamper = undefined;
    }
  });

  it('no write spelling reaches team-b, and nothing there changed', async () => {
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/admin/api/users', { namespace: 'team-b', name: 'eve' }],
      ['POST', '/admin/api/access-keys/team-b%2Fbob-laptop/rotate', {}],
      ['POST', '/admin/api/access-keys/team-b%2fbob-laptop/revoke', {}],
      ['PUT', '/admin/api/access-keys/team-b%2Fbob-laptop', { resourceVersion: '1', revoked: true }],
      ['DELETE', '/admin/api/access-keys/team-b%2Fbob-laptop', undefined],
      ['DELETE', '/admin/api/users/team-b%2Fbob', undefined],
    ];
    for (const [method, url, payload] of writes) {
      const response = await fetch(`${adminUrl}${url}`, {
        method,
        headers: {
          cookie: ann,
          'x-ccproxy-csrf': '1',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      });
      expect.soft(response.status, `${method} ${url}`).toBe(403);
    }
    const headers = await admin.auth();
    const bob = await admin.app.inject({ method: 'GET', url: '/admin/api/access-keys/team-b%2Fbob-laptop', headers });
    expect(bob.json()).toMatchObject({ revoked: false });
    expect((await admin.app.inject({ method: 'GET', url: '/admin/api/users/team-b%2Feve', headers })).statusCode).toBe(
      404,
    );
  });
});
