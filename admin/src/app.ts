import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import fastifyStatic from '@fastify/static';
import { registerAuth } from './auth.ts';
import { clientErrorOptions, trackResponses } from './client-errors.ts';
import { maxPathSegment, registerErrorHandler, registerNoRouteAnswer, typeboxValidator } from './errors.ts';
import { registerSimpleRestQuery } from './list.ts';
import { registerBodyParsers } from './body-parsing.ts';
import { registerOpenApiCompletion } from './openapi.ts';
import { registerSecurityHeaders } from './security-headers.ts';
import type { AdminConfig, AdminDeps, RouteDeps } from './route-deps.ts';
import { userRoutes } from './routes/users.ts';
import { accessKeyRoutes } from './routes/access-keys.ts';
import { bedrockKeyRoutes } from './routes/bedrock-keys.ts';
import { teamBudgetRoutes } from './routes/team-budgets.ts';
import { usageRoutes } from './routes/usage.ts';
import { requestRoutes } from './routes/requests.ts';
import { usageBreakdownRoutes } from './routes/usage-breakdown.ts';
import { selfServiceRoutes } from './routes/self-service.ts';
import { ignoredManifestRoutes } from './routes/ignored-manifests.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { SessionRecords } from './session-records.ts';

export type { AdminConfig, AdminDeps } from './route-deps.ts';
import { registerAuditRoute, registerAuditTrail } from './audit.ts';

export const defaultUiDir = fileURLToPath(new URL('../dist/ui/', import.meta.url));

/**
 * The admin facade: a REST API shaped for react-admin's ra-data-simple-rest under /admin/api,
 * session auth under /admin/auth, the OpenAPI document at /admin/openapi.json, and the built
 * web UI at /. Builds, does not listen.
 */
export async function buildAdminApp(config: AdminConfig, deps: AdminDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit ?? 64 * 1024,
    // Ids are up to 320 characters, percent-encoded up to three times that: the schema, not the
    // router's 100-character default (a 414), says what is too long.
    routerOptions: { maxParamLength: maxPathSegment },
    // Behind N load balancers the client's address (the login rate limit's key) is the Nth
    // X-Forwarded-For entry from the right, the one the nearest load balancer wrote; without
    // one, the header is the client's own and is ignored.
    // (proxy-addr's own rule for a hop count, written out: fastify's types take no number.)
    trustProxy: (_address: string, hop: number) => hop < (config.trustedProxyHops ?? 0),
    // Slow headers and bodies get a 408 in bounded time; malformed URLs and HTTP, the error shape.
    ...clientErrorOptions(config),
  });
  trackResponses(app);
  app.setValidatorCompiler(typeboxValidator);
  // JSON only, depth-limited: any other body is a 415, not a string that fails validation later.
  registerBodyParsers(app);
  // First of the onRequest hooks, so every answer (404s, 405s, 401s) carries the headers.
  await registerSecurityHeaders(app);
  // Before any route and before swagger reads them: every route's error statuses in the document.
  const allowedMethods = registerOpenApiCompletion(app);
  const noRoute = registerErrorHandler(app, allowedMethods);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'claude-code-proxy admin API',
        version: '0.1.0',
        description: 'Users, access keys, Bedrock keys and usage; shaped for ra-data-simple-rest.',
      },
      components: { securitySchemes: { session: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ session: [] }],
    },
  });

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ready' }));
  app.get('/admin/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  const records = new SessionRecords(deps.db, deps.logger, {
    ...(config.sessionCheckMs === undefined ? {} : { ttlMs: config.sessionCheckMs }),
    ...(config.sessionReadTimeoutMs === undefined ? {} : { readTimeoutMs: config.sessionReadTimeoutMs }),
  });
  await registerAuth(app, {
    records,
    ...(config.credentialId === undefined ? {} : { credentialId: config.credentialId }),
    username: config.username,
    passwordHash: config.passwordHash,
    sessionSeconds: config.sessionSeconds,
    ...(config.sessionSecret === undefined ? {} : { sessionSecret: config.sessionSecret }),
    ...(config.loginAttempts === undefined ? {} : { loginAttempts: config.loginAttempts }),
    ...(config.loginWindowMs === undefined ? {} : { loginWindowMs: config.loginWindowMs }),
    ...(config.oidc === undefined ? {} : { oidc: config.oidc }),
    audit: { db: deps.db },
  });
  // Every API write, by whom and how it ended (admin_audit), whatever route serves it.
  registerAuditTrail(app, { db: deps.db });
  registerNoRouteAnswer(app, noRoute);
  // react-admin reads the total from Content-Range; the header must be readable cross-origin too.
  app.addHook('onSend', async (request, reply) => {
    if (request.url.startsWith('/admin/')) reply.header('Access-Control-Expose-Headers', 'Content-Range');
  });

  registerSimpleRestQuery(app);
  const routeDeps: RouteDeps = { ...deps, config };
  // Each route file is a plugin typed by its schemas (TypeBox type provider), given its deps.
  for (const routes of [
    userRoutes,
    accessKeyRoutes,
    bedrockKeyRoutes,
    teamBudgetRoutes,
    usageRoutes,
    selfServiceRoutes,
    ignoredManifestRoutes,
  ])
    await app.register(routes, routeDeps);
  registerAuditRoute(app, { db: deps.db });
  await app.register(sessionRoutes, { records });
  await app.register(requestRoutes, { db: deps.db });
  await app.register(usageBreakdownRoutes, {
    db: deps.db,
    ...(deps.prices === undefined ? {} : { prices: deps.prices }),
  });

  const uiDir = config.uiDir ?? defaultUiDir;
  if (existsSync(uiDir)) {
    // Cache-Control comes from security-headers.ts (hashed assets cached, the rest no-store).
    await app.register(fastifyStatic, {
      root: uiDir,
      prefix: '/',
      index: ['index.html'],
      schemaHide: true,
      cacheControl: false,
      // The build writes .br and .gz beside every text asset (admin/ui/vite.config.ts).
      preCompressed: true,
    });
  } else {
    deps.logger.warn({ uiDir }, 'admin UI not built (npm run build -w admin); serving the API only');
  }
  return app;
}
