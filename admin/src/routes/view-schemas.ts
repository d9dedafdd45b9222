import { Type, type TProperties } from 'typebox';

/**
 * What the routes answer, for the OpenAPI document (views.ts builds the values). Documentation
 * only: answers are serialized with JSON.stringify (openapi.ts), so a field missing here is
 * never silently dropped; the schemathesis run checks every answer against these. Objects stay
 * open (extra fields allowed) so a view can grow without breaking clients.
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
    ready: Type.String(),
    readyReason: Type.String(),
    readyMessage: Type.String(),
    conditions: Type.Array(condition),
    ...properties,
  });

export const userRecord = record({
  displayName: Type.String(),
  description: Type.String(),
  suspended: Type.Boolean(),
});

const accessKeyFields = {
  userId: Type.String(),
  user: Type.String(),
  secretName: Type.String(),
  routing: Type.String(),
  revoked: Type.Boolean(),
  bedrock: Type.Union([Type.Object({}), Type.Null()]),
  keyPrefix: nullable(Type.String()),
  breakerState: Type.String(),
  lastFailoverAt: nullable(Type.String()),
};
export const accessKeyRecord = record(accessKeyFields);
/** With the breaker row from Postgres merged in. */
export const accessKeyWithBreaker = record({ ...accessKeyFields, consecutiveFailures: Type.Integer() });
/** Issue and rotate: the key itself, shown in this answer only. */
export const issuedKeyRecord = record({
  ...accessKeyFields,
  keyPrefix: Type.String(),
  accessKey: Type.String(),
  baseUrl: Type.String(),
});
export const userWithKeys = record({
  displayName: Type.String(),
  description: Type.String(),
  suspended: Type.Boolean(),
  accessKeys: Type.Array(accessKeyRecord),
});
export const breakerRecord = Type.Object({
  id: Type.String(),
  state: Type.String(),
  consecutiveFailures: Type.Integer(),
  openedAt: nullable(Type.String()),
  lastFailoverAt: nullable(Type.String()),
});
export const bedrockKeyRecord = record({
  accessKeyId: Type.String(),
  accessKey: Type.String(),
  secretName: Type.String(),
  secretKey: Type.String(),
  fingerprint: nullable(Type.String()),
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
export const usageBucket = Type.Object({
  id: Type.String(),
  bucketStart: Type.String(),
  provider: Type.String(),
  ...tokenTotals,
});
export const usageSummary = Type.Object({
  byProvider: Type.Array(Type.Object({ provider: Type.String(), ...tokenTotals })),
  topUsers: Type.Array(
    Type.Object({ userId: nullable(Type.String()), name: Type.String(), displayName: Type.String(), ...tokenTotals }),
  ),
  requests: Type.Number(),
  failovers: Type.Number(),
  failoverShare: Type.Number(),
});
