import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, SignJWT } from 'jose';
import { Type } from 'typebox';
import type { Identity } from './access/identity.ts';
import { grantsFor, groupsOf, selfServiceFor, type RoleRule } from './access/roles.ts';
import { audit, type AuditSink } from './audit.ts';
import { readCookie, sessionCookie, transactionCookie } from './cookies.ts';
import type { Sessions } from './sessions.ts';

/** Single sign-on with any OpenID Connect issuer (CCPROXY_ADMIN_OIDC_*). */
export interface OidcOptions {
  issuerUrl: string;
  clientId: string;
  /** Absent for a public client (PKCE alone). */
  clientSecret?: string;
  /** This admin's callback, `https://admin.example.com/admin/auth/oidc/callback`, registered at the issuer. */
  redirectUrl: string;
  scopes: string;
  /** The claim (ID token or userinfo) holding the person's groups. */
  groupsClaim: string;
  roles: RoleRule[];
}

/**
 * The callback's query is the identity provider's, not an API client's: beside `code` and
 * `state` providers add their own (`iss`, `session_state`, Google's `scope`, `authuser`, `hd`,
 * `prompt`), so it takes any parameter; openid-client checks the ones that matter.
 */
const issuerAnswer = Type.Object({}, { additionalProperties: true });

interface Wiring {
  sessions: Sessions;
  audit: AuditSink;
  cookieName: string;
  secureCookie: boolean;
  sessionKey: Uint8Array;
  loginLimit: object;
}

const transactionName = 'ccproxy-oidc';
const transactionSeconds = 600;
const transactionAudience = 'ccproxy-admin-oidc-transaction';

/**
 * Authorization code flow with PKCE (S256), state and nonce, through `openid-client` (discovery,
 * the code grant and its checks: state, issuer, audience, expiry, nonce, PKCE). Its ID-token
 * checks on the token endpoint's answer do not include the signature (OIDC allows skipping it
 * over TLS), so the ID token is verified once more with `jose` against the issuer's JWKS from
 * discovery: a token whose signature does not verify never signs anyone in.
 *
 * The transaction (state, nonce, verifier) lives in a signed, HttpOnly cookie on the callback's
 * path for ten minutes, so any replica can finish a sign-in another started.
 */
export function registerOidc(app: FastifyInstance, options: OidcOptions, wiring: Wiring): void {
  let discovered: Promise<{ config: client.Configuration; jwks: ReturnType<typeof createRemoteJWKSet> }> | undefined;
  const discover = () => {
    discovered ??= discoverIssuer(options).catch((error: unknown) => {
      discovered = undefined; // an issuer down at the first sign-in is asked again at the next
      throw error;
    });
    return discovered;
  };
  const failed = async (request: FastifyRequest, reply: FastifyReply, status: number, detail: string, who = '') => {
    request.log.warn({ detail }, 'admin single sign-on failed');
    await audit(wiring.audit, request, {
      actorMethod: 'oidc',
      actorSubject: who,
      action: 'login',
      outcome: status === 403 ? 'denied' : 'failure',
      status,
      detail,
    });
    reply.header('Set-Cookie', transactionCookie(transactionName, '', 0, wiring.secureCookie));
    // Back to the login page, which shows why (no token, no detail beyond the reason).
    return reply.redirect(`/?sso_error=${encodeURIComponent(detail.slice(0, 200))}#/login`, 303);
  };

  app.get(
    '/admin/auth/oidc/login',
    {
      config: { public: true, rateLimit: wiring.loginLimit },
      schema: { tags: ['auth'], security: [], response: { 302: Type.Null() } },
    },
    async (request, reply) => {
      let config: client.Configuration;
      try {
        ({ config } = await discover());
      } catch (error) {
        return failed(request, reply, 503, `identity provider unreachable: ${messageOf(error)}`);
      }
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const transaction = await new SignJWT({ state, nonce, verifier })
        .setProtectedHeader({ alg: 'HS256' })
        .setAudience(transactionAudience)
        .setExpirationTime(`${transactionSeconds}s`)
        .sign(wiring.sessionKey);
      const target = client.buildAuthorizationUrl(config, {
        redirect_uri: options.redirectUrl,
        scope: options.scopes,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      reply.header(
        'Set-Cookie',
        transactionCookie(transactionName, transaction, transactionSeconds, wiring.secureCookie),
      );
      return reply.redirect(target.href, 302);
    },
  );

  app.get(
    '/admin/auth/oidc/callback',
    {
      config: { public: true, rateLimit: wiring.loginLimit },
      schema: { tags: ['auth'], security: [], querystring: issuerAnswer, response: { 303: Type.Null() } },
    },
    async (request, reply) => {
      const raw = readCookie(request.headers.cookie, transactionName);
      let checks: { state: string; nonce: string; verifier: string };
      try {
        if (raw === undefined) throw new Error('no sign-in in progress (expired, or cookies blocked)');
        const { payload } = await jwtVerify(raw, wiring.sessionKey, {
          audience: transactionAudience,
          algorithms: ['HS256'],
        });
        checks = payload as unknown as typeof checks;
      } catch (error) {
        return failed(request, reply, 400, `sign-in transaction invalid: ${messageOf(error)}`);
      }
      let identity: Identity;
      let groups: string[];
      try {
        const { config, jwks } = await discover();
        // The callback URL as registered, with the query the issuer sent (never the Host header).
        const current = new URL(options.redirectUrl);
        current.search = new URL(request.url, 'http://callback.invalid').search;
        const tokens = await client.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: checks.verifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
        });
        const idToken = tokens.id_token as string;
        const metadata = config.serverMetadata();
        const { payload: claims } = await jwtVerify(idToken, jwks, {
          issuer: metadata.issuer,
          audience: options.clientId,
          requiredClaims: ['sub', 'exp', 'iat'],
        });
        const sub = claims.sub as string;
        let source: Record<string, unknown> = claims;
        if (claims[options.groupsClaim] === undefined || claims.email === undefined)
          source = { ...(await client.fetchUserInfo(config, tokens.access_token, sub)), ...claims };
        const email = typeof source.email === 'string' ? source.email : null;
        const name = typeof source.name === 'string' ? source.name : null;
        // Only the issuer's own word makes an email verified (a self-service link may name an email).
        const emailVerified = source.email_verified === true;
        groups = groupsOf(source[options.groupsClaim]);
        // Postgres text cannot hold U+0000, and a claim is never altered to fit (a stripped email or
        // group could match someone else's): such a sign-in is refused, naming the claim.
        const withNul = [
          ['sub', sub],
          ['email', email],
          ['name', name],
          ...groups.map((group) => [options.groupsClaim, group] as const),
        ].find(([, value]) => value?.includes('\u0000') === true)?.[0];
        if (withNul !== undefined)
          return failed(
            request,
            reply,
            403,
            `the identity provider's ${withNul} claim contains a NUL character, which cannot be recorded; ask its administrator to correct it`,
            sub.includes('\u0000') ? '' : sub,
          );
        const granted = grantsFor(options.roles, groups);
        if (granted === undefined)
          return failed(
            request,
            reply,
            403,
            `${email ?? sub}: no admin role for groups [${groups.join(', ')}] (claim ${options.groupsClaim})`,
            sub,
          );
        identity = {
          method: 'oidc',
          sub,
          email,
          emailVerified,
          name,
          ...granted,
          ...selfServiceFor(options.roles, groups),
        };
      } catch (error) {
        return failed(request, reply, 401, `ID token or code refused: ${messageOf(error)}`);
      }
      let token: string;
      try {
        // The groups are recorded with the session: each request maps them through the current role table.
        ({ token } = await wiring.sessions.issue(identity, groups));
      } catch (error) {
        return failed(request, reply, 503, messageOf(error), identity.sub);
      }
      await audit(wiring.audit, request, { identity, action: 'login', outcome: 'success', status: 303 });
      request.log.info({ sub: identity.sub, role: identity.role }, 'admin signed in with single sign-on');
      reply.header('Set-Cookie', [
        transactionCookie(transactionName, '', 0, wiring.secureCookie),
        sessionCookie(wiring.cookieName, token, wiring.sessions.seconds, wiring.secureCookie),
      ]);
      return reply.redirect('/?signed_in=sso#/', 303);
    },
  );
}

async function discoverIssuer(options: OidcOptions) {
  const issuer = new URL(options.issuerUrl);
  // http is allowed for a loopback issuer only (tests, a local issuer); checked at start.
  const insecure = issuer.protocol === 'http:';
  const discovered = await client.discovery(
    issuer,
    options.clientId,
    undefined,
    client.None(),
    insecure ? { execute: [client.allowInsecureRequests] } : {},
  );
  const metadata = discovered.serverMetadata();
  // client_secret_basic is the spec's default; post only for an issuer that lists post alone.
  const methods = metadata.token_endpoint_auth_methods_supported ?? [];
  const authentication =
    options.clientSecret === undefined
      ? client.None()
      : methods.includes('client_secret_post') && !methods.includes('client_secret_basic')
        ? client.ClientSecretPost(options.clientSecret)
        : client.ClientSecretBasic(options.clientSecret);
  const config = new client.Configuration(metadata, options.clientId, undefined, authentication);
  if (insecure) client.allowInsecureRequests(config);
  if (metadata.jwks_uri === undefined) throw new Error('the issuer publishes no jwks_uri');
  return { config, jwks: createRemoteJWKSet(new URL(metadata.jwks_uri)) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 300) : String(error).slice(0, 300);
}
