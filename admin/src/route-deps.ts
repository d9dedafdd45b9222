import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Logger, PriceTable, Queryable } from '@ccproxy/core';
import type { OidcOptions } from './oidc.ts';
import type { ResourceStore } from './store/resource-store.ts';

/**
 * What the route plugins are given: a leaf module (types only), so routes never import the app
 * that registers them.
 */
export interface AdminConfig {
  username: string;
  /** argon2id (or legacy scrypt) hash of the break-glass admin password (see password.ts). */
  passwordHash: string;
  /** Single sign-on (CCPROXY_ADMIN_OIDC_*); the password stays as break-glass. */
  oidc?: OidcOptions;
  sessionSecret?: string;
  sessionSeconds: number;
  /** How long a replica trusts a session's row before reading it again (default 1000 ms; session-records.ts). */
  sessionCheckMs?: number;
  /** How long a request waits at most for its session's row before a 503 (default 2000 ms; session-records.ts). */
  sessionReadTimeoutMs?: number;
  /**
   * Names the break-glass password across replicas when only the plain password is configured
   * (its hash is salted anew at each start): a change of it ends earlier break-glass sessions.
   */
  credentialId?: string;
  /** The proxy's base URL users reach, for the `ANTHROPIC_BASE_URL` shown after issuing a key. */
  publicUrl: string;
  /** Largest request body, in bytes. */
  bodyLimit?: number;
  loginAttempts?: number;
  loginWindowMs?: number;
  /** Load balancers in front (CCPROXY_ADMIN_TRUSTED_PROXY_HOPS): whose X-Forwarded-For names the client. */
  trustedProxyHops?: number;
  /** Longest time for a request's headers, then 408 (client-errors.ts; 30 s by default). */
  requestHeadersTimeoutMs?: number;
  /** Longest time for a whole request, headers and body, then 408 (client-errors.ts; 30 s by default). */
  requestTimeoutMs?: number;
  /** The built web UI; defaults to admin/dist/ui (served only when it exists). */
  uiDir?: string;
}

export interface AdminDeps {
  logger: Logger;
  /** Reads of usage and breaker rows (the writes belong to the proxy and the operator); the audit trail. */
  db: Queryable;
  store: ResourceStore;
  /** How long a breaker stays open (CCPROXY_BREAKER_OPEN_MS), to tell open from half-open. */
  breakerOpenMs?: number;
  /** The breaker's failure window (CCPROXY_BREAKER_WINDOW_MS), to tell failing from closed. */
  breakerWindowMs?: number;
  /** The price table (CCPROXY_PRICE_TABLE_FILE, as the proxy loads it), shown read-only; built-in when absent. */
  prices?: PriceTable;
}

export interface RouteDeps extends AdminDeps {
  config: AdminConfig;
}

/** A route file: a fastify plugin whose handlers see request data typed by the route's schemas. */
export type RoutePlugin = FastifyPluginAsyncTypebox<RouteDeps>;
