import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

let admin: LocalAdmin;

beforeAll(async () => {
  admin = await startLocalAdmin({ loginAttempts: 5, loginWindowMs: 60_000 });
});
afterAll(async () => admin?.close());

const login = (body: unknown, ip = '10.0.0.1') =>
  admin.app.inject({
    method: 'POST',
    url: '/admin/auth/login',
    payload: body as Record<string, unknown>,
    remoteAddress: ip,
  });
const sign = (secret: string, claims: { exp?: number; aud?: string; role?: string } = {}) =>
  new SignJWT(claims.role === undefined ? {} : { role: claims.role, read: 'all', write: 'all' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('admin')
    .setIssuer('ccproxy-admin')
    .setAudience(claims.aud ?? 'ccproxy-admin-api')
    .setJti('test-jti')
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(secret));
const sessionSecret = 'admin-test-session-secret-0123456789abcdef';

describe('admin auth', () => {
  it('refuses every API route without a session (401, JSON), per the OpenAPI document', async () => {
    const doc = (await admin.app.inject({ method: 'GET', url: '/admin/openapi.json' })).json() as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path: path.replace('{id}', encodeURIComponent('team-a/x')),
        // `security: []` is the document's word for a public operation (login, the login methods).
        public: Array.isArray(operation.security) && operation.security.length === 0,
      })),
    );
    expect(routes.filter((route) => route.public).map((route) => route.path)).toContain('/admin/auth/login');
    const guarded = routes.filter((route) => !route.public);
    expect(guarded.length).toBeGreaterThan(15);
    for (const route of guarded) {
      const response = await admin.app.inject({
        method: route.method as 'GET',
        url: route.path,
        payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : {},
      });
      expect.soft(response.statusCode, `${route.method} ${route.path}`).toBe(401);
      expect.soft(response.json()).toMatchObject({ error: 'unauthorized' });
    }
    // Unknown API paths too: nothing under /admin/ answers without a session.
    expect((await admin.app.inject({ method: 'GET', url: '/admin/api/nothing-here' })).statusCode).toBe(401);
  });

  it('refuses wrong names and passwords alike, and never logs a password', async () => {
    expect((await login({ username: 'admin', password: 'wrong password' }, '10.0.1.1')).statusCode).toBe(401);
    expect((await login({ username: 'root', password }, '10.0.1.2')).statusCode).toBe(401);
    const ok = await login({ username: 'admin', password }, '10.0.1.3');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ username: 'admin', token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/) });
    const logs = admin.logs.join('\n');
    expect(logs).toContain('admin login failed');
    expect(logs).not.toContain(password);
    expect(logs).not.toContain('wrong password');
  });

  it('rejects tampered, foreign, expired and wrong-audience tokens', async () => {
    const good = (await login({ username: 'admin', password }, '10.0.2.1')).json() as { token: string };
    const use = (token: string) =>
      admin.app.inject({ method: 'GET', url: '/admin/api/users', headers: { authorization: `Bearer ${token}` } });
    expect((await use(good.token)).statusCode).toBe(200);
    const [header, payload, signature] = good.token.split('.') as [string, string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'mallory' }),
    ).toString('base64url');
    expect((await use(`${header}.${forged}.${signature}`)).statusCode).toBe(401);
    expect((await use(`${header}.${payload}.${signature.slice(0, -2)}AA`)).statusCode).toBe(401);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect((await use(none)).statusCode).toBe(401);
    expect((await use(await sign('another-secret-another-secret-0123456789'))).statusCode).toBe(401);
    expect((await use(await sign(sessionSecret, { exp: Math.floor(Date.now() / 1000) - 10 }))).statusCode).toBe(401);
    expect((await use(await sign(sessionSecret, { aud: 'something-else' }))).statusCode).toBe(401);
    // A well-signed token naming no recorded session is refused, whatever it claims: tokens of
    // earlier releases (which carried the role) and one forged with the secret but no row.
    for (const aud of ['ccproxy-admin-api', 'ccproxy-admin-api/2', 'ccproxy-admin-api/3', 'ccproxy-admin-api/4']) {
      const answer = await use(await sign(sessionSecret, { role: 'admin', aud }));
      expect(answer.statusCode, aud).toBe(401);
      expect(answer.json(), aud).toMatchObject({ error: 'unauthorized' });
    }
    // Issued for the audience earlier releases refuse (they cannot see a revocation).
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toMatchObject({ aud: 'ccproxy-admin-api/4' });
  });

  it('logs out: the token stops working', async () => {
    const { token } = (await login({ username: 'admin', password }, '10.0.3.1')).json() as { token: string };
    const headers = { authorization: `Bearer ${token}` };
    expect((await admin.app.inject({ method: 'GET', url: '/admin/auth/session', headers })).json()).toMatchObject({
      username: 'admin',
    });
    expect((await admin.app.inject({ method: 'POST', url: '/admin/auth/logout', headers })).statusCode).toBe(204);
    expect((await admin.app.inject({ method: 'GET', url: '/admin/api/users', headers })).statusCode).toBe(401);
  });

  it('rate-limits login attempts per client (429), even with the right password', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1)
      statuses.push((await login({ username: 'admin', password: `guess-${i}` }, '10.0.9.9')).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const limited = await login({ username: 'admin', password }, '10.0.9.9');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: 'too_many_requests' });
    expect(limited.headers['retry-after']).toBeDefined();
    // Another client is not locked out by the brute force.
    expect((await login({ username: 'admin', password }, '10.0.9.10')).statusCode).toBe(200);
  });
});

/**
 * Behind a load balancer every request comes from its address: the login limit must key on the
 * client the load balancer names (the rightmost X-Forwarded-For entry, which it appends), or ten
 * failures by anyone lock every administrator out. Without a load balancer the header is the
 * client's own and must not be believed.
 */
describe('admin login rate limit behind a load balancer', () => {
  const albAddress = '10.0.200.7';
  const failures = (instance: LocalAdmin, forwardedFor: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, (_, i) =>
        instance.app.inject({
          method: 'POST',
          url: '/admin/auth/login',
          payload: { username: 'admin', password: `guess-${i}` },
          remoteAddress: albAddress,
          headers: { 'x-forwarded-for': forwardedFor },
        }),
      ),
    );
  const attempt = (instance: LocalAdmin, forwardedFor: string) =>
    instance.app.inject({
      method: 'POST',
      url: '/admin/auth/login',
      payload: { username: 'admin', password },
      remoteAddress: albAddress,
      headers: { 'x-forwarded-for': forwardedFor },
    });

  it('with one trusted hop, a brute force from one client does not lock out another', async () => {
    const behindAlb = await startLocalAdmin({ loginAttempts: 3, loginWindowMs: 60_000, trustedProxyHops: 1 });
    try {
      await failures(behindAlb, '203.0.113.10', 3);
      expect((await attempt(behindAlb, '203.0.113.10')).statusCode).toBe(429);
      expect((await attempt(behindAlb, '198.51.100.20')).statusCode).toBe(200);
      // A client cannot escape its limit by forging the header: the load balancer appends the real address.
      expect((await attempt(behindAlb, '192.0.2.1, 203.0.113.10')).statusCode).toBe(429);
    } finally {
      await behindAlb.close();
    }
  });

  it('with no trusted hop, a forged X-Forwarded-For changes nothing', async () => {
    const direct = await startLocalAdmin({ loginAttempts: 3, loginWindowMs: 60_000 });
    try {
      await failures(direct, '203.0.113.10', 3);
      expect((await attempt(direct, '198.51.100.99')).statusCode).toBe(429);
    } finally {
      await direct.close();
    }
  });
});
