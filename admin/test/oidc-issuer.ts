import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

/**
 * A real, standard-conformant OpenID Connect issuer on loopback: panva's `oidc-provider` (the
 * certified implementation), with its own discovery, JWKS, authorization, token and userinfo
 * endpoints and its development login and consent pages (any password; the login name picks
 * one of `accounts`). `tamper` rewrites the ID token of the token endpoint's next answers, to
 * see what the admin does with a forged, expired or foreign token.
 */
export interface TestAccount {
  email: string;
  name: string;
  groups: string[];
  /** The issuer's email_verified claim (default true). */
  emailVerified?: boolean;
}

export interface TestIssuer {
  url: string;
  clientId: string;
  clientSecret: string;
  /** Set to rewrite the ID token the token endpoint answers (undefined: as issued). */
  tamper: ((idToken: string) => Promise<string>) | undefined;
  /** Signs claims with the issuer's own signing key (a token only the claims make wrong). */
  sign(claims: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/**
 * A loopback port nobody listens on now (the admin's callback URL must be known before it starts):
 * the harness's, which never hands the same port out twice in a process (this file's own copy did,
 * and a proxy started after it got the admin's port: EADDRINUSE in CI).
 */
export { freePort } from '@ccproxy/test-harness';

export async function startOidcIssuer(redirectUrl: string, accounts: Record<string, TestAccount>): Promise<TestIssuer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'test-signing-key', alg: 'RS256', use: 'sig' };
  const clientId = 'ccproxy-admin';
  const clientSecret = 'test-client-secret-0123456789abcdef';
  const provider = new Provider(url, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (account === undefined) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: account.email,
            email_verified: account.emailVerified ?? true,
            name: account.name,
            groups: account.groups,
          };
        },
      };
    },
  });
  const issuer: TestIssuer = {
    url,
    clientId,
    clientSecret,
    tamper: undefined,
    async sign(claims) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid as string })
        .sign(await importJWK(jwk, 'RS256'));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  // After the token endpoint built its answer: the only place a test changes what the issuer says.
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { id_token?: unknown } | undefined;
    if (ctx.path === '/token' && issuer.tamper !== undefined && typeof body?.id_token === 'string')
      ctx.body = { ...body, id_token: await issuer.tamper(body.id_token) };
  });
  server.on('request', provider.callback());
  return issuer;
}

/**
 * Signs in through the admin's single sign-on without a browser, as one would follow it by hand:
 * every redirect, the issuer's login form (login name, any password) and consent form, cookies
 * kept per host (as a browser does, whatever the port). Answers the admin's final redirect and the
 * session cookie it set (undefined when it set none).
 */
export async function ssoLogin(
  adminUrl: string,
  login: string,
): Promise<{ location: string; cookie: string | undefined; cookieHeader: string | undefined }> {
  const jar = new Map<string, string>();
  let sessionHeader: string | undefined;
  let url = `${adminUrl}/admin/auth/oidc/login`;
  let init: RequestInit = {};
  for (let step = 0; step < 20; step += 1) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie } });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const [name = '', value = ''] = pair.split('=', 2);
      if (/max-age=0/i.test(line) || value === '') jar.delete(name.trim());
      else jar.set(name.trim(), value);
      if (name.trim().endsWith('ccproxy-session') && value !== '') sessionHeader = line;
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      const next = new URL(location, url).href;
      // Back at the admin's UI: the sign-in is over, one way or the other.
      if (next.startsWith(`${adminUrl}/?`) || next === `${adminUrl}/`) {
        const session = [...jar].find(([name]) => name.endsWith('ccproxy-session'));
        return {
          location: next,
          cookie: session === undefined ? undefined : `${session[0]}=${session[1]}`,
          cookieHeader: sessionHeader,
        };
      }
      url = next;
      init = {};
      continue;
    }
    const html = await response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (response.status !== 200 || action === undefined)
      throw new Error(`sign-in stuck at ${url}: ${response.status} ${html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const [input] of html.matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(input)?.[1];
      if (name === undefined) continue;
      const value = /value="([^"]*)"/.exec(input)?.[1] ?? '';
      fields.set(name, name === 'login' ? login : name === 'password' ? 'any password' : value);
    }
    url = new URL(action.replaceAll('&amp;', '&'), url).href;
    init = { method: 'POST', body: fields, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('sign-in did not finish in 20 steps');
}
