import { Type } from 'typebox';
import { envField } from './config.ts';

/** The environment contract of DESIGN.md, one field set per concern; each process picks the sets it needs. */

const port = (fallback: number) => Type.Integer({ minimum: 1, maximum: 65535, default: fallback });
const url = (fallback?: string) =>
  fallback === undefined
    ? Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' }))
    : Type.String({ pattern: '^https?://[^\\s]+$', default: fallback });
const dnsLabel = () => Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
const millis = (fallback: number) => Type.Integer({ minimum: 1, maximum: 86_400_000, default: fallback });

export const commonFields = {
  host: envField('CCPROXY_HOST', Type.String({ minLength: 1, default: '127.0.0.1' }), 'listen address'),
  logLevel: envField(
    'CCPROXY_LOG_LEVEL',
    Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
    'log level',
  ),
  dataDir: envField(
    'CCPROXY_DATA_DIR',
    Type.String({ minLength: 1, default: '.data' }),
    'local-mode data directory (PGlite, local keys, generated Secrets)',
  ),
  databaseUrl: envField(
    'DATABASE_URL',
    Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    'Postgres URL; unset means the embedded PGlite under the data dir',
    { secret: true },
  ),
  keyHasherSecret: envField(
    'CCPROXY_KEY_HASHER_SECRET',
    Type.Optional(Type.String({ minLength: 32 })),
    'HMAC secret for access keys; unset locally means generated into the data dir',
    { secret: true },
  ),
  publicUrl: envField('CCPROXY_PUBLIC_URL', url(), 'base URL users reach, written into generated Secrets'),
  kmsKeyId: envField(
    'CCPROXY_KMS_KEY_ID',
    Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    'KMS key (id, ARN or alias) for envelope encryption of Bedrock keys; unset locally means the local key file; AWS_ENDPOINT_URL_KMS overrides the endpoint',
  ),
  priceTableFile: envField(
    'CCPROXY_PRICE_TABLE_FILE',
    Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    'JSON file of model prices added to (or replacing) the built-in table; see the README section "Prices"',
  ),
} as const;

export const operatorFields = {
  operatorPort: envField('CCPROXY_OPERATOR_PORT', port(8082), 'operator health and metrics port'),
  watchNamespace: envField(
    'CCPROXY_WATCH_NAMESPACE',
    Type.Optional(dnsLabel()),
    'watch only this namespace (RBAC: a Role instead of a ClusterRole); unset means all',
  ),
  leaseNamespace: envField(
    'CCPROXY_OPERATOR_NAMESPACE',
    Type.Optional(dnsLabel()),
    "namespace of the leader-election Lease; unset means the pod's own namespace, or `default`",
  ),
  leaseDurationSeconds: envField(
    'CCPROXY_LEASE_DURATION_SECONDS',
    Type.Integer({ minimum: 2, maximum: 300, default: 15 }),
    'leader Lease duration; a dead leader is replaced after at most this long',
  ),
  podName: envField(
    'POD_NAME',
    Type.Optional(Type.String({ minLength: 1 })),
    "this replica's identity in the Lease (the Downward API pod name); unset means hostname and pid",
  ),
  resyncSeconds: envField(
    'CCPROXY_RESYNC_SECONDS',
    Type.Integer({ minimum: 5, maximum: 86_400, default: 300 }),
    'every resource is reconciled again this often (drift repair)',
  ),
  webhookConfiguration: envField(
    'CCPROXY_WEBHOOK_CONFIGURATION',
    Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    'MutatingWebhookConfiguration whose caBundle the operator sets; every replica then serves the admission webhook that writes finalizers and owner references at create. Unset: no webhook (the reconcile patches them)',
  ),
  webhookPort: envField('CCPROXY_WEBHOOK_PORT', port(9443), 'admission webhook HTTPS port (POST /mutate)'),
  webhookService: envField(
    'CCPROXY_WEBHOOK_SERVICE',
    Type.String({ ...dnsLabel(), default: 'ccproxy-operator' }),
    "the Service in front of the webhook: its serving certificate is for <service>.<namespace>.svc (the operator's namespace)",
  ),
  webhookTlsSecret: envField(
    'CCPROXY_WEBHOOK_TLS_SECRET',
    Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    "Secret (in the operator's namespace) holding the webhook's self-signed CA and serving certificate, created by the operator when absent and never written over when not its own; unset means <service>-webhook-tls",
  ),
  referenceWaitSeconds: envField(
    'CCPROXY_REFERENCE_WAIT_SECONDS',
    Type.Integer({ minimum: 0, maximum: 86_400, default: 60 }),
    'how long after its creation a resource waits for the ProxyUser, AccessKey or Secret it names (Ready=False, WaitingFor…, no Warning) before it is Stalled',
  ),
} as const;

export const proxyFields = {
  port: envField('PORT', port(8080), 'proxy listen port'),
  anthropicUpstreamUrl: envField('ANTHROPIC_UPSTREAM_URL', url('https://api.anthropic.com'), 'Plan upstream base URL'),
  planApiKey: envField(
    'CCPROXY_PLAN_API_KEY',
    Type.Optional(Type.String({ minLength: 1 })),
    'default Plan API key, injected only when the client sends no credential',
    { secret: true },
  ),
  maxBodyBytes: envField(
    'CCPROXY_MAX_BODY_BYTES',
    Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 32 * 1024 * 1024 }),
    'largest request body accepted (Anthropic accepts 32 MB)',
  ),
  connectTimeoutMs: envField('CCPROXY_UPSTREAM_CONNECT_TIMEOUT_MS', millis(10_000), 'upstream TCP/TLS connect timeout'),
  headersTimeoutMs: envField(
    'CCPROXY_UPSTREAM_HEADERS_TIMEOUT_MS',
    millis(600_000),
    'time allowed until upstream response headers (long non-streaming answers take minutes)',
  ),
  bodyTimeoutMs: envField(
    'CCPROXY_UPSTREAM_BODY_TIMEOUT_MS',
    millis(300_000),
    'longest silence allowed between upstream body chunks',
  ),
  bedrockEndpoint: envField(
    'AWS_ENDPOINT_URL_BEDROCK_RUNTIME',
    url(),
    'Bedrock Runtime endpoint override (AWS SDK convention); unset → https://bedrock-runtime.{region}.amazonaws.com',
  ),
  breakerFailures: envField(
    'CCPROXY_BREAKER_FAILURES',
    Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
    "consecutive Plan failures that open a key's circuit breaker",
  ),
  breakerWindowMs: envField('CCPROXY_BREAKER_WINDOW_MS', millis(60_000), '…within this many ms'),
  breakerOpenMs: envField(
    'CCPROXY_BREAKER_OPEN_MS',
    millis(30 * 60_000),
    'how long an open breaker sends everything to Bedrock before one trial request goes to Plan',
  ),
  meterPlan: envField(
    'CCPROXY_METER_PLAN',
    Type.Boolean({ default: true }),
    'record token usage of Plan (Anthropic) requests too; Bedrock usage is always recorded',
  ),
  cloudWatchEmf: envField(
    'CCPROXY_CLOUDWATCH_EMF',
    Type.Boolean({ default: false }),
    'write CloudWatch metrics (namespace ClaudeCodeProxy) as Embedded Metric Format lines on stdout, once a minute',
  ),
  keyCacheTtlMs: envField(
    'CCPROXY_KEY_CACHE_TTL_MS',
    millis(30_000),
    'safety-net lifetime of cached key lookups (LISTEN/NOTIFY invalidates sooner)',
  ),
  keyStaleIfErrorMs: envField(
    'CCPROXY_KEY_STALE_IF_ERROR_MS',
    Type.Integer({ minimum: 0, maximum: 86_400_000, default: 15 * 60_000 }),
    'while Postgres is unreachable, a key it confirmed within this many ms keeps working (0: never serve stale)',
  ),
  budgetRefreshMs: envField(
    'CCPROXY_BUDGET_REFRESH_MS',
    Type.Integer({ minimum: 100, maximum: 60_000, default: 1_000 }),
    "how old a replica's cached budget spend may get before it is re-read in the background (near a budget's soft limit every request reads it)",
  ),
  rateLimitSyncMs: envField(
    'CCPROXY_RATE_LIMIT_SYNC_MS',
    Type.Integer({ minimum: 50, maximum: 10_000, default: 250 }),
    "how often a replica pushes its rate-limit token counts to Postgres and reads every replica's back",
  ),
  streamSlotLeaseMs: envField(
    'CCPROXY_STREAM_SLOT_LEASE_MS',
    Type.Integer({ minimum: 3_000, maximum: 600_000, default: 60_000 }),
    "lease of a concurrent-stream slot in Postgres, renewed every third of it while the stream runs: a dead replica's slots are free again within one lease",
  ),
  requestHeadersTimeoutMs: envField(
    'CCPROXY_REQUEST_HEADERS_TIMEOUT_MS',
    Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000 }),
    "longest time a client may take to send a request's headers; then 408 and the connection is closed",
  ),
  requestBodyIdleTimeoutMs: envField(
    'CCPROXY_REQUEST_BODY_IDLE_TIMEOUT_MS',
    Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 30_000 }),
    'longest silence between request body chunks (not a total: 32 MB over a slow link may take minutes); then 408 and the connection is closed',
  ),
} as const;

export const adminFields = {
  adminPort: envField('CCPROXY_ADMIN_PORT', port(8081), 'admin listen port'),
  adminUsername: envField(
    'CCPROXY_ADMIN_USERNAME',
    Type.String({ minLength: 1, maxLength: 200, default: 'admin' }),
    'admin login name',
  ),
  adminPasswordHash: envField(
    'CCPROXY_ADMIN_PASSWORD_HASH',
    Type.Optional(Type.String({ pattern: '^(\\$argon2id\\$|scrypt\\$)' })),
    'break-glass admin password as an argon2id PHC hash (`$argon2id$v=19$m=19456,t=2,p=1$…`; older `scrypt$N$r$p$salt$hash` hashes still verify and are logged as needing an upgrade)',
    { secret: true },
  ),
  adminPassword: envField(
    'CCPROXY_ADMIN_PASSWORD',
    Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    'admin password in plain text (hashed at start; for local use)',
    { secret: true },
  ),
  adminSessionSecret: envField(
    'CCPROXY_ADMIN_SESSION_SECRET',
    Type.Optional(Type.String({ minLength: 32 })),
    'HMAC secret signing admin session tokens (share it between admin replicas); unset means random per process',
    { secret: true },
  ),
  adminSessionSeconds: envField(
    'CCPROXY_ADMIN_SESSION_SECONDS',
    Type.Integer({ minimum: 60, maximum: 86_400, default: 3600 }),
    'lifetime of an admin session token',
  ),
  adminOidcIssuerUrl: envField(
    'CCPROXY_ADMIN_OIDC_ISSUER_URL',
    Type.Optional(Type.String({ minLength: 1, maxLength: 2000, pattern: '^https?://' })),
    'OpenID Connect issuer for admin single sign-on (discovery at <issuer>/.well-known/openid-configuration; https, or http on loopback); unset: break-glass password only',
  ),
  adminOidcClientId: envField(
    'CCPROXY_ADMIN_OIDC_CLIENT_ID',
    Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    "the admin's client id at the issuer",
  ),
  adminOidcClientSecret: envField(
    'CCPROXY_ADMIN_OIDC_CLIENT_SECRET',
    Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    'client secret (unset: a public client, PKCE only)',
    { secret: true },
  ),
  adminOidcRedirectUrl: envField(
    'CCPROXY_ADMIN_OIDC_REDIRECT_URL',
    Type.Optional(Type.String({ minLength: 1, maxLength: 2000, pattern: '^https?://[^/]+/admin/auth/oidc/callback$' })),
    'the callback registered at the issuer: https://<admin host>/admin/auth/oidc/callback (https makes the session cookie Secure)',
  ),
  adminOidcScopes: envField(
    'CCPROXY_ADMIN_OIDC_SCOPES',
    Type.String({ minLength: 1, maxLength: 500, pattern: '(^| )openid( |$)', default: 'openid email profile' }),
    'scopes asked for (must include openid; add the one that releases groups if the issuer needs it, e.g. groups)',
  ),
  adminOidcGroupsClaim: envField(
    'CCPROXY_ADMIN_OIDC_GROUPS_CLAIM',
    Type.String({ minLength: 1, maxLength: 200, default: 'groups' }),
    'claim (ID token or userinfo) listing the groups roles are mapped from',
  ),
  adminOidcRoles: envField(
    'CCPROXY_ADMIN_OIDC_ROLES',
    Type.Optional(Type.String({ minLength: 1, maxLength: 10_000 })),
    'group → role table: `group=admin;group=team-admin:ns1,ns2;group=viewer;group=developer[:ns1,ns2]` (developer: self-service of their own keys, linked only by ProxyUsers in the namespaces named, or any; groups not named sign in to nothing)',
  ),
  adminTrustedProxyHops: envField(
    'CCPROXY_ADMIN_TRUSTED_PROXY_HOPS',
    Type.Integer({ minimum: 0, maximum: 10, default: 0 }),
    'load balancers in front of the admin whose X-Forwarded-For entry names the client (the login rate limit is per client): 1 behind one ALB, 0 when clients connect directly (a client could otherwise forge the header)',
  ),
} as const;

export const localFields = {
  manifestsDir: envField(
    'CCPROXY_MANIFESTS_DIR',
    Type.String({ minLength: 1, default: 'examples/local' }),
    'local-mode resource folder',
  ),
  rotationGraceSeconds: envField(
    'CCPROXY_ROTATION_GRACE_SECONDS',
    Type.Integer({ minimum: 0, maximum: 30 * 86_400, default: 86_400 }),
    'how long a rotated-out access key keeps working',
  ),
} as const;
