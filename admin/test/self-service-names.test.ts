import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoleRules } from '@ccproxy/admin';
import { dnsSubdomainPattern } from '@ccproxy/operator';
import { proxyUser } from '@ccproxy/test-harness';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { freePort, ssoLogin, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * A self-service key is named `<user>-<8 hex>` with the user's name cut to fit: whatever valid
 * ProxyUser name a developer is linked to (a `.` or `-` where it is cut, the longest name of 253),
 * the key and its Secret get valid names. Real issuer, real admin in local mode over HTTP.
 */
const names: Record<string, string> = {
  'dot-at-cut': `${'a'.repeat(179)}.bbbbb`,
  'dash-at-cut': `${'a'.repeat(179)}-bbbbb`,
  'longest-dot-at-cut': `${'a'.repeat(179)}.${'b'.repeat(73)}`,
  'longest-dash-at-cut': `${'a'.repeat(179)}-${'b'.repeat(73)}`,
  'longest-many-parts': `${'abc.'.repeat(63)}a`,
  'dots-before-cut': `${'a'.repeat(178)}.b.${'c'.repeat(20)}`,
};
const namespace = 'team-n';
const accounts = Object.fromEntries(
  Object.keys(names).map((sub) => [sub, { email: `${sub}@example.com`, name: sub, groups: ['devs'] }]),
);

let admin: LocalAdmin;
let issuer: TestIssuer;
let adminUrl: string;
const cookies: Record<string, string> = {};

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
      roles: parseRoleRules('devs=developer').rules,
    },
  });
  await admin.app.listen({ port, host: '127.0.0.1' });
  // Names past the API's 200 characters come from elsewhere (kubectl, a hand-written manifest).
  await mkdir(join(admin.manifestsDir, namespace), { recursive: true });
  const users = Object.entries(names).map(([sub, name]) =>
    proxyUser(namespace, name, `{ identity: { subject: ${sub} }, selfService: { enabled: true } }`),
  );
  await writeFile(join(admin.manifestsDir, namespace, 'users.yaml'), users.join('---\n'));
  for (const sub of Object.keys(names)) {
    const signed = await ssoLogin(adminUrl, sub);
    expect(signed.location, sub).toBe(`${adminUrl}/?signed_in=sso#/`);
    cookies[sub] = signed.cookie as string;
  }
}, 120_000);
afterAll(async () => {
  await admin?.close();
  await issuer?.close();
});

const issue = async (sub: string) => {
  const response = await fetch(`${adminUrl}/admin/api/my-keys`, {
    method: 'POST',
    headers: { cookie: cookies[sub] as string, 'x-ccproxy-csrf': '1' },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('self-service key names', () => {
  it('every valid user name (a . or - at the cut, 253 characters) issues a key whose name and Secret name are valid', async () => {
    for (const [sub, user] of Object.entries(names)) {
      expect(user.length).toBeLessThanOrEqual(253);
      expect(user).toMatch(new RegExp(dnsSubdomainPattern));
      const issued = await issue(sub);
      expect({ sub, status: issued.status }, JSON.stringify(issued.body)).toEqual({ sub, status: 201 });
      const name = issued.body.id as string;
      expect(name).toMatch(new RegExp(dnsSubdomainPattern));
      expect(name).toMatch(/-[0-9a-f]{8}$/);
      expect(user.startsWith(name.slice(0, -9))).toBe(true);
      const key = await admin.store.get('AccessKey', namespace, name);
      expect(key?.spec.secretName).toMatch(new RegExp(dnsSubdomainPattern));
      expect(key?.spec.secretName.length).toBeLessThanOrEqual(253);
    }
  });
});
