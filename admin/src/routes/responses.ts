import { Type, type TProperties, type TSchema } from 'typebox';

/**
 * What the routes answer on success, for the OpenAPI document (views.ts builds the values).
 * Documentation only: answers are serialized with JSON.stringify (openapi.ts), so a field missing
 * here is never silently dropped; the schemathesis run checks every answer against these. Objects
 * stay open (extra fields allowed) so a view can grow without breaking clients. Every API route
 * must have its entry in `successResponses` (openapi.ts refuses to register one without).
 */
const nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const condition = Type.Object({
  type: Type.String(),
  status: Type.String(),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});
const record = (properties: TProperties) =>
  Type.Object({
    id: Type.String(),
    namespace: Type.String(),
    name: Type.String(),
    resourceVersion: Type.String(),
    /** statusOf (views.ts): Ready, Suspended, Revoked, Stalled, Reconciling, Pending or NotReady. */
    status: Type.Union(
      ['Ready', 'Suspended', 'Revoked', 'Stalled', 'Reconciling', 'Pending', 'NotReady'].map((value) =>
        Type.Literal(value),
      ),
    ),
    ready: Type.String(),
    readyReason: Type.String(),
    readyMessage: Type.String(),
    conditions: Type.Array(condition),
    ...properties,
  });

/** status.budget as the operator wrote it: spend against each cap (views.ts budgetStatusOf); null without a budget. */
const budgetStatus = Type.Union([
  Type.Object({
    state: Type.String(),
    day: Type.Optional(Type.Object({})),
    month: Type.Optional(Type.Object({})),
  }),
  Type.Null(),
]);

const userRecord = record({
  displayName: Type.String(),
  description: Type.String(),
  suspended: Type.Boolean(),
  budget: Type.Union([Type.Object({}), Type.Null()]),
  rateLimits: Type.Union([Type.Object({}), Type.Null()]),
  budgetStatus,
  identity: Type.Union([Type.Object({}), Type.Null()]),
  selfService: Type.Union([Type.Object({}), Type.Null()]),
});

const accessKeyFields = {
  userId: Type.String(),
  user: Type.String(),
  secretName: Type.String(),
  routing: Type.String(),
  revoked: Type.Boolean(),
  bedrock: Type.Union([Type.Object({}), Type.Null()]),
  budget: Type.Union([Type.Object({}), Type.Null()]),
  rateLimits: Type.Union([Type.Object({}), Type.Null()]),
  budgetStatus,
  keyPrefix: nullable(Type.String()),
  breakerState: Type.String(),
  lastFailoverAt: nullable(Type.String()),
};
const accessKeyRecord = record(accessKeyFields);
/** With the breaker row from Postgres merged in. */
const accessKeyWithBreaker = record({
  ...accessKeyFields,
  consecutiveFailures: Type.Integer(),
  lastFailedFailoverAt: nullable(Type.String()),
});
/** Issue and rotate: the key itself, shown in this answer only. */
const issuedKeyRecord = record({
  ...accessKeyFields,
  keyPrefix: Type.String(),
  accessKey: Type.String(),
  baseUrl: Type.String(),
});
const userWithKeys = record({
  displayName: Type.String(),
  description: Type.String(),
  suspended: Type.Boolean(),
  budgetStatus,
  accessKeys: Type.Array(accessKeyRecord),
});
const teamBudgetRecord = record({
  description: Type.String(),
  budget: Type.Object({}),
  budgetStatus,
  /** Ok, Warning, Exhausted, or Unknown before the operator has reported. */
  state: Type.String(),
});
const breakerRecord = Type.Object({
  id: Type.String(),
  state: Type.String(),
  consecutiveFailures: Type.Integer(),
  openedAt: nullable(Type.String()),
  lastFailoverAt: nullable(Type.String()),
  lastFailedFailoverAt: nullable(Type.String()),
});
const bedrockKeyRecord = record({
  accessKeyId: Type.String(),
  accessKey: Type.String(),
  secretName: Type.String(),
  secretKey: Type.String(),
  fingerprint: nullable(Type.String()),
  /** The BedrockKey's default Bedrock API (`spec.api`); null: not set (the AccessKey's, else InvokeModel). */
  api: Type.Union([Type.Literal('Converse'), Type.Literal('InvokeModel'), Type.Null()]),
});

const tokenTotals = {
  requests: Type.Number(),
  failovers: Type.Number(),
  inputTokens: Type.Number(),
  outputTokens: Type.Number(),
  cacheReadTokens: Type.Number(),
  cacheCreationTokens: Type.Number(),
  totalTokens: Type.Number(),
};
const usageBucket = Type.Object({
  id: Type.String(),
  bucketStart: Type.String(),
  provider: Type.String(),
  ...tokenTotals,
});
const usageSummary = Type.Object({
  byProvider: Type.Array(Type.Object({ provider: Type.String(), ...tokenTotals })),
  topUsers: Type.Array(
    Type.Object({ userId: nullable(Type.String()), name: Type.String(), displayName: Type.String(), ...tokenTotals }),
  ),
  requests: Type.Number(),
  failovers: Type.Number(),
  failoverShare: Type.Number(),
});

const auditRecord = Type.Object({
  id: Type.String(),
  occurredAt: Type.String(),
  actorMethod: Type.String(),
  actorSubject: Type.String(),
  actorEmail: nullable(Type.String()),
  actorRole: nullable(Type.String()),
  action: Type.String(),
  resourceKind: nullable(Type.String()),
  namespace: nullable(Type.String()),
  name: nullable(Type.String()),
  outcome: Type.String(),
  status: Type.Integer(),
  detail: nullable(Type.String()),
  requestId: nullable(Type.String()),
});

/** Self-service: the developer's own keys, `id` their name and `key` the `namespace/name` id. */
const myKeyRecord = record({ ...accessKeyFields, key: Type.String() });
const myIssuedKey = record({
  ...accessKeyFields,
  key: Type.String(),
  keyPrefix: Type.String(),
  accessKey: Type.String(),
  baseUrl: Type.String(),
});
const selfServicePolicy = Type.Object({
  enabled: Type.Boolean(),
  maxKeys: Type.Integer(),
  routingModes: Type.Array(Type.String()),
});
const myProfile = Type.Object({ user: userRecord, selfService: selfServicePolicy, activeKeys: Type.Integer() });
const myUsage = Type.Object({
  days: Type.Integer(),
  keys: Type.Array(
    Type.Object({ id: Type.String(), requests: Type.Number(), totalTokens: Type.Number(), costUsd: Type.Number() }),
  ),
});

/** An admin session as the Sessions list shows it (role: what the groups gave at sign-in). */
const sessionRecord = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  method: Type.Union([Type.Literal('oidc'), Type.Literal('break-glass')]),
  email: nullable(Type.String()),
  name: nullable(Type.String()),
  role: Type.String(),
  groups: Type.Array(Type.String()),
  issuedAt: Type.String(),
  expiresAt: Type.String(),
  lastSeenAt: Type.String(),
  /** The session making this request. */
  current: Type.Boolean(),
});

/** `METHOD /path` → the success status and its body. */
export const successResponses: Record<string, Record<number, TSchema>> = {
  'GET /admin/api/users': { 200: Type.Array(userRecord) },
  'POST /admin/api/users': { 201: userRecord },
  'GET /admin/api/users/:id': { 200: userWithKeys },
  'PUT /admin/api/users/:id': { 200: userRecord },
  'DELETE /admin/api/users/:id': { 200: userRecord },
  'GET /admin/api/access-keys': { 200: Type.Array(accessKeyWithBreaker) },
  'POST /admin/api/access-keys': { 201: issuedKeyRecord },
  'GET /admin/api/access-keys/:id': { 200: accessKeyWithBreaker },
  'PUT /admin/api/access-keys/:id': { 200: accessKeyWithBreaker },
  'DELETE /admin/api/access-keys/:id': { 200: accessKeyRecord },
  'POST /admin/api/access-keys/:id/revoke': { 200: accessKeyRecord },
  'POST /admin/api/access-keys/:id/rotate': { 200: issuedKeyRecord },
  'GET /admin/api/breakers': { 200: Type.Array(breakerRecord) },
  'GET /admin/api/bedrock-keys': { 200: Type.Array(bedrockKeyRecord) },
  'POST /admin/api/bedrock-keys': { 201: bedrockKeyRecord },
  'GET /admin/api/bedrock-keys/:id': { 200: bedrockKeyRecord },
  'PUT /admin/api/bedrock-keys/:id': { 200: bedrockKeyRecord },
  'DELETE /admin/api/bedrock-keys/:id': { 200: bedrockKeyRecord },
  'GET /admin/api/team-budgets': { 200: Type.Array(teamBudgetRecord) },
  'POST /admin/api/team-budgets': { 201: teamBudgetRecord },
  'GET /admin/api/team-budgets/:id': { 200: teamBudgetRecord },
  'PUT /admin/api/team-budgets/:id': { 200: teamBudgetRecord },
  'DELETE /admin/api/team-budgets/:id': { 200: teamBudgetRecord },
  'GET /admin/api/usage': { 200: Type.Array(usageBucket) },
  'GET /admin/api/usage/summary': { 200: usageSummary },
  'GET /admin/api/audit': { 200: Type.Array(auditRecord) },
  'GET /admin/api/my/profile': { 200: myProfile },
  'GET /admin/api/my-keys': { 200: Type.Array(myKeyRecord) },
  'POST /admin/api/my-keys': { 201: myIssuedKey },
  'POST /admin/api/my-keys/:id/rotate': { 200: myIssuedKey },
  'POST /admin/api/my-keys/:id/revoke': { 200: myKeyRecord },
  'GET /admin/api/my-usage': { 200: myUsage },
  'GET /admin/api/sessions': { 200: Type.Array(sessionRecord) },
  'DELETE /admin/api/sessions/:id': { 200: sessionRecord },
  'POST /admin/api/sessions/revoke': { 200: Type.Object({ subject: Type.String(), ended: Type.Array(Type.String()) }) },
};
