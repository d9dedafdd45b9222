import type { FastifyInstance } from 'fastify';
import fastifyHelmet from '@fastify/helmet';
import helmet from 'helmet';

/**
 * The Content-Security-Policy of every admin answer. The built UI (Vite) loads only its own
 * module scripts and stylesheets, never inline script; MUI's emotion injects `<style>` elements
 * at run time, hence `style-src 'unsafe-inline'` (styles cannot run code). `img-src data:` is
 * the empty favicon of index.html. admin/test/browser-csp.test.ts loads the UI in Chromium with
 * this policy enforced and fails on any violation.
 */
export const contentSecurityPolicy = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

/** Vite's content-hashed build output: a new build gets new names, so these may be kept a year. */
const hashedAsset = /^\/assets\/[^/?]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+(\?|$)/;

/** The one helmet configuration: the plugin applies it to answers, `securityHeaders` to raw ones. */
const helmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: contentSecurityPolicy },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginOpenerPolicy: { policy: 'same-origin' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
} as const;

/**
 * The headers helmet sets with that configuration, plus `Cache-Control: no-store`: for answers no
 * onRequest hook sees (a malformed URL, HTTP Node cannot parse, a timeout written on the raw
 * socket). Read from helmet's own middleware, so they cannot differ from every other answer's.
 */
export const securityHeaders: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const collect = {
    setHeader: (name: string, value: string) => void (headers[name.toLowerCase()] = value),
    removeHeader: () => undefined,
  };
  helmet(helmetOptions)({} as never, collect as never, () => undefined);
  return { ...headers, 'cache-control': 'no-store' };
})();

/**
 * Security headers on every answer, UI, API, errors and 404s alike (@fastify/helmet, in an
 * onRequest hook, so they are set before any handler or error handler runs): the CSP above,
 * `X-Frame-Options: DENY`, `nosniff`, `Referrer-Policy: no-referrer`, COOP/CORP same-origin and
 * HSTS (browsers act on it only when the page came over https, e.g. behind a TLS ingress).
 * `Cache-Control: no-store` on everything but hashed assets: answers carry keys (issue, rotate)
 * and account data, and index.html must not outlive a deploy.
 */
export async function registerSecurityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(fastifyHelmet, { global: true, ...helmetOptions });
  app.addHook('onSend', async (request, reply) => {
    const immutable = reply.statusCode === 200 && hashedAsset.test(request.url);
    reply.header('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-store');
  });
}
