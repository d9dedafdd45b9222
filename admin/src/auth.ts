import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { describeHash, needsUpgrade, verifyPassword } from './password.ts';
import { AdminError, sendError } from './errors.ts';
import { errorReply } from './openapi.ts';
import { adminGrants, type Identity } from './access/identity.ts';
import { registerAuthorization } from './access/authorize.ts';
import { registerOidc, type OidcOptions } from './oidc.ts';
import { audit, type AuditSink } from './audit.ts';
import { readCookie, sessionCookie } from './cookies.ts';
import { createSessions } from './sessions.ts';
import type { SessionRecords } from './session-records.ts';

export interface AuthOptions {
  username: string;
  /** argon2id (or legacy scrypt) hash (see password.ts); the plain password is never kept. */
  passwordHash: string;
  /** HMAC key for session tokens; random per process when not shared between replicas. */
  sessionSecret?: string;
  sessionSeconds: number;
  /** The admin_sessions table through this replica's short cache (session-records.ts). */
  records: SessionRecords;
  /**
   * What names the break-glass password across replicas and restarts when only the plain
   * password is configured (its hash is salted anew at each start); the hash otherwise.
   */
  credentialId?: string;
  /** Login attempts allowed per client address per window. */
  loginAttempts?: number;
  loginWindowMs?: number;
  /** Single sign-on; without it only the break-glass password signs in. */
  oidc?: OidcOptions;
  audit: AuditSink;
}

export const loginBody = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 200 }), password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);

const grantsReply = Type.Union([Type.Literal('all'), Type.Array(Type.String())]);
const identityReply = {
  username: Type.String(),
  method: Type.Union([Type.Literal('oidc'), Type.Literal('break-glass')]),
  email: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  role: Type.Union([
    Type.Literal('admin'),
    Type.Literal('team-admin'),
    Type.Literal('viewer'),
    Type.Literal('developer'),
  ]),
  read: grantsReply,
  write: grantsReply,
  /** May use My keys (self-service): in a developer group. */
  selfService: Type.Boolean(),
  expiresAt: Type.String(),
};
const sessionReply = Type.Object({ token: Type.String(), ...identityReply });

/**
 * Sessions are short-lived HS256 JWTs naming a recorded session (sessions.ts). The break-glass
 * password login answers the token, which the UI keeps in sessionStorage and sends as
 * `Authorization: Bearer` (no ambient credential). Single sign-on ends in a redirect, so its
 * token travels in an HttpOnly, SameSite=Strict cookie (Secure behind TLS); a write
 * authenticated by that cookie must also carry `X-CCProxy-CSRF: 1`, a header no cross-site form
 * can send and no cross-origin script may send without a CORS preflight we never allow. Each
 * token names a row of admin_sessions (sessions.ts), checked on every request through a cache of
 * at most 1 s: logout, or an admin ending the session, stops it on every replica.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const key = options.sessionSecret === undefined ? randomBytes(32) : new TextEncoder().encode(options.sessionSecret);
  // Compared against even when the name is wrong, so the answer time does not reveal it.
  const dummyHash = options.passwordHash;
  const secureCookie = options.oidc?.redirectUrl.startsWith('https:') ?? false;
  const cookieName = secureCookie ? '__Host-ccproxy-session' : 'ccproxy-session';

  const sessions = createSessions({
    key,
    seconds: options.sessionSeconds,
    records: options.records,
    username: options.username,
    credential: options.credentialId ?? options.passwordHash,
    roles: options.oidc?.roles,
  });

  await app.register(rateLimit, { global: false });
  const loginLimit = {
    max: options.loginAttempts ?? 10,
    timeWindow: options.loginWindowMs ?? 60_000,
    errorResponseBuilder: (_request: FastifyRequest, context: { ttl: number }) => ({
      statusCode: 429,
      error: 'too_many_requests',
      message: `Too many login attempts; retry in ${Math.ceil(context.ttl / 1000)} s.`,
    }),
  };
  if (needsUpgrade(options.passwordHash))
    app.log.warn(
      { hash: describeHash(options.passwordHash) },
      'the break-glass admin password hash is below current guidance (argon2id m=19 MiB, t=2): replace CCPROXY_ADMIN_PASSWORD_HASH with a new hash',
    );

  // Typed by its schema (TypeBox type provider): the handler reads the body without a cast.
  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/admin/auth/login',
    {
      schema: {
        tags: ['auth'],
        body: loginBody,
        response: { 200: sessionReply, 401: errorReply, 503: errorReply },
        security: [],
      },
      config: { public: true, rateLimit: loginLimit },
    },
    async (request, reply) => {
      const { body } = request;
      const nameOk = body.username === options.username;
      const passwordOk = await verifyPassword(body.password, nameOk ? options.passwordHash : dummyHash);
      const claimed = body.username.slice(0, 200);
      if (!nameOk || !passwordOk) {
        request.log.warn({ username: claimed }, 'admin login failed');
        await audit(options.audit, request, {
          actorMethod: 'break-glass',
          actorSubject: claimed,
          action: 'login',
          outcome: 'failure',
          status: 401,
          detail: 'wrong username or password',
        });
        return sendError(reply, 401, 'unauthorized', 'Wrong username or password.');
      }
      const identity: Identity = {
        method: 'break-glass',
        sub: options.username,
        email: null,
        emailVerified: false,
        selfService: false,
        selfServiceNamespaces: [],
        name: null,
        role: 'admin',
        grants: adminGrants,
      };
      const { token, expiresAt } = await sessions.issue(identity, []);
      const upgrade = needsUpgrade(options.passwordHash);
      request.log.info({ username: options.username, passwordHashNeedsUpgrade: upgrade }, 'admin logged in');
      await audit(options.audit, request, {
        identity,
        action: 'login',
        outcome: 'success',
        status: 200,
        detail: upgrade ? `password hash needs upgrade: ${describeHash(options.passwordHash)}` : null,
      });
      return { token, ...identityView(identity, expiresAt) };
    },
  );

  app.post(
    '/admin/auth/logout',
    { schema: { tags: ['auth'], response: { 204: Type.Null() } } },
    async (request, reply) => {
      // Shared by every replica (admin_sessions); an unreachable database is a 503, and the token stays valid.
      if (request.session !== undefined) await options.records.revoke(request.session.jti, request.session.sub);
      if (request.identity !== undefined)
        await audit(options.audit, request, {
          identity: request.identity,
          action: 'logout',
          outcome: 'success',
          status: 204,
        });
      reply.header('Set-Cookie', sessionCookie(cookieName, '', 0, secureCookie));
      return reply.code(204).send();
    },
  );

  app.get(
    '/admin/auth/session',
    { schema: { tags: ['auth'], response: { 200: Type.Object(identityReply) } } },
    async (request) => identityView(request.identity as Identity, new Date((request.session?.exp ?? 0) * 1000)),
  );

  // What the login page offers: the SSO button only when single sign-on is configured.
  app.get(
    '/admin/auth/methods',
    {
      config: { public: true },
      schema: { tags: ['auth'], security: [], response: { 200: Type.Object({ oidc: Type.Boolean() }) } },
    },
    async () => ({ oidc: options.oidc !== undefined }),
  );

  if (options.oidc !== undefined)
    registerOidc(app, options.oidc, {
      sessions,
      audit: options.audit,
      cookieName,
      secureCookie,
      sessionKey: key,
      loginLimit,
    });

  // Everything under /admin/ requires a session unless its route says `config.public` (login,
  // the OpenAPI document); outside /admin/ are only health checks and the UI's static files.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public === true) return;
    // Both the raw URL and the matched route count, so no spelling of a path slips past.
    if (!request.url.startsWith('/admin/') && !(request.routeOptions.url ?? '').startsWith('/admin/')) return;
    const header = request.headers.authorization;
    const cookie = header === undefined ? readCookie(request.headers.cookie, cookieName) : undefined;
    const match = header === undefined ? undefined : /^Bearer ([A-Za-z0-9._-]{1,4096})$/.exec(header)?.[1];
    const token = match ?? cookie;
    if (token === undefined) return sendError(reply, 401, 'unauthorized', 'Log in first: no session token.');
    try {
      const { session, identity } = await sessions.authenticate(token);
      request.session = session;
      request.identity = identity;
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
      // A dead session's cookie (ended, expired, unreadable) is cleared, so the browser stops sending it.
      if (error.status === 401 && match === undefined)
        reply.header('Set-Cookie', sessionCookie(cookieName, '', 0, secureCookie));
      return sendError(reply, error.status, error.wireName, error.message);
    }
    const safe = request.method === 'GET' || request.method === 'HEAD';
    if (match === undefined && !safe && request.headers['x-ccproxy-csrf'] !== '1')
      return sendError(reply, 403, 'forbidden', 'A write with the session cookie needs the header X-CCProxy-CSRF: 1.');
    return undefined;
  });

  registerAuthorization(app);
}

function identityView(identity: Identity, expiresAt: Date) {
  return {
    username: identity.email ?? identity.sub,
    method: identity.method,
    email: identity.email,
    name: identity.name,
    role: identity.role,
    read: identity.grants.read,
    write: identity.grants.write,
    selfService: identity.selfService,
    expiresAt: expiresAt.toISOString(),
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    session?: { sub: string; jti: string; exp: number };
  }
}
