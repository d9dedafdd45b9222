import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { jwtVerify, SignJWT } from 'jose';
import { Type, type Static } from 'typebox';
import { verifyPassword } from './password.ts';
import { sendError } from './errors.ts';
import { errorReply } from './openapi.ts';

export interface AuthOptions {
  username: string;
  /** scrypt hash (see password.ts); the plain password is never kept. */
  passwordHash: string;
  /** HMAC key for session tokens; random per process when not shared between replicas. */
  sessionSecret?: string;
  sessionSeconds: number;
  /** Login attempts allowed per client address per window. */
  loginAttempts?: number;
  loginWindowMs?: number;
}

const issuer = 'ccproxy-admin';
const audience = 'ccproxy-admin-api';

export const loginBody = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 200 }), password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);

const sessionReply = Type.Object({
  token: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  username: Type.String(),
});

/**
 * Sessions are short-lived HS256 JWTs in `Authorization: Bearer`. The UI keeps the token in
 * sessionStorage rather than a cookie, so there is no ambient credential for CSRF to ride on.
 * Logout puts the token id on a deny list until the token would have expired anyway (per
 * process: with several replicas, the short lifetime bounds the rest).
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const key = options.sessionSecret === undefined ? randomBytes(32) : new TextEncoder().encode(options.sessionSecret);
  const revoked = new Map<string, number>();
  // Compared against even when the name is wrong, so the answer time does not reveal it.
  const dummyHash = options.passwordHash;

  await app.register(rateLimit, { global: false });

  app.post(
    '/admin/auth/login',
    {
      schema: { tags: ['auth'], body: loginBody, response: { 200: sessionReply, 401: errorReply }, security: [] },
      config: {
        public: true,
        rateLimit: {
          max: options.loginAttempts ?? 10,
          timeWindow: options.loginWindowMs ?? 60_000,
          errorResponseBuilder: (_request, context) => ({
            statusCode: 429,
            error: 'too_many_requests',
            message: `Too many login attempts; retry in ${Math.ceil(context.ttl / 1000)} s.`,
          }),
        },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof loginBody>;
      const nameOk = body.username === options.username;
      const passwordOk = await verifyPassword(body.password, nameOk ? options.passwordHash : dummyHash);
      if (!nameOk || !passwordOk) {
        request.log.warn({ username: body.username.slice(0, 200) }, 'admin login failed');
        return sendError(reply, 401, 'unauthorized', 'Wrong username or password.');
      }
      const expiresAt = new Date(Date.now() + options.sessionSeconds * 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(options.username)
        .setIssuer(issuer)
        .setAudience(audience)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(key);
      request.log.info({ username: options.username }, 'admin logged in');
      return { token, expiresAt: expiresAt.toISOString(), username: options.username };
    },
  );

  app.post(
    '/admin/auth/logout',
    { schema: { tags: ['auth'], response: { 204: Type.Null() } } },
    async (request, reply) => {
      const session = request.session;
      if (session !== undefined) revoked.set(session.jti, session.exp * 1000);
      return reply.code(204).send();
    },
  );

  app.get(
    '/admin/auth/session',
    {
      schema: { tags: ['auth'], response: { 200: Type.Object({ username: Type.String(), expiresAt: Type.String() }) } },
    },
    async (request) => ({
      username: request.session?.sub ?? '',
      expiresAt: new Date((request.session?.exp ?? 0) * 1000).toISOString(),
    }),
  );

  // Everything under /admin/ requires a session unless its route says `config.public` (login,
  // the OpenAPI document); outside /admin/ are only health checks and the UI's static files.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public === true) return;
    // Both the raw URL and the matched route count, so no spelling of a path slips past.
    if (!request.url.startsWith('/admin/') && !(request.routeOptions.url ?? '').startsWith('/admin/')) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9._-]{1,4096})$/.exec(header);
    if (match === null) return sendError(reply, 401, 'unauthorized', 'Log in first: no session token.');
    try {
      const { payload } = await jwtVerify(match[1] as string, key, { issuer, audience, algorithms: ['HS256'] });
      if (typeof payload.jti !== 'string' || typeof payload.exp !== 'number' || typeof payload.sub !== 'string')
        throw new Error('incomplete token');
      const now = Date.now();
      for (const [jti, until] of revoked) if (until < now) revoked.delete(jti);
      if (revoked.has(payload.jti)) throw new Error('logged out');
      request.session = { sub: payload.sub, jti: payload.jti, exp: payload.exp };
    } catch {
      return sendError(reply, 401, 'unauthorized', 'Session expired or invalid: log in again.');
    }
    return undefined;
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    session?: { sub: string; jti: string; exp: number };
  }
}
