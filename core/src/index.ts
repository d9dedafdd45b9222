export { generateAccessKey, keyPrefix, createKeyHasher, type KeyHasher } from './access-key.ts';
export {
  loadConfig,
  envField,
  describeConfig,
  ConfigError,
  type ConfigOf,
  type EnvField,
  type EnvFields,
} from './config.ts';
export { commonFields, proxyFields, adminFields, localFields, operatorFields } from './settings.ts';
export {
  ProxyError,
  errorCodes,
  anthropicTypeForStatus,
  toAnthropicError,
  toAnthropicErrorEvent,
  type AnthropicErrorType,
  type AnthropicErrorBody,
  type ErrorCode,
  type AdminErrorCode,
} from './errors.ts';
export { createLogger, redactKeyInUrl, type Logger, type LoggerOptions } from './logger.ts';
export { createMetricsRegistry } from './metrics.ts';
export { ensureLocalSecret } from './local-secret.ts';
export type { Database, Queryable, QueryOptions, MigrationClient } from './db/database.ts';
export { PgDatabase } from './db/pg-database.ts';
export { PgliteDatabase } from './db/pglite-database.ts';
export { openDatabase } from './db/open-database.ts';
export { migrate } from './db/migrate.ts';
export {
  findKeyByHash,
  findBedrockCiphertext,
  findBedrockAuth,
  type StoredBedrockAuth,
  keyChangesChannel,
  type KeyRecord,
  type Routing,
  type BedrockApi,
} from './db/key-records.ts';
export {
  upsertUser,
  findUserId,
  findUser,
  upsertAccessKey,
  revokeAccessKey,
  disableAccessKey,
  deleteAccessKey,
  deleteUser,
  listRefs,
  upsertBedrockKey,
  deleteBedrockKey,
  findAccessKeyId,
  findBedrockKeyRow,
  type ObjectRef,
  type UserRow,
  type AccessKeyRow,
  type BedrockKeyRow,
  type BedrockAuth,
} from './db/resource-rows.ts';
export type * from './anthropic-types.ts';
export {
  encryptSecret,
  decryptSecret,
  envelopeKeyId,
  secretFingerprint,
  LocalKeyWrapper,
  KeyWrapperError,
  type KeyWrapper,
} from './envelope.ts';
export { KmsKeyWrapper } from './kms-key-wrapper.ts';
export {
  breakerChannel,
  readBreaker,
  recordPlanFailure,
  recordPlanSuccess,
  recordFailover,
  claimTrial,
  breakerStateOf,
  type BreakerPolicy,
  type BreakerRow,
  type BreakerState,
} from './db/breaker-rows.ts';
export { insertUsage, usageRecordCostMicroUsd, type UsageRecord } from './db/usage-rows.ts';
export { readBreakerSummaries, type BreakerSummary } from './db/breaker-reads.ts';
export {
  readUsageSeries,
  readUsageByProvider,
  readTopUsers,
  type ResourceName,
  type UsageFilter,
  type UsageTotals,
} from './db/usage-reads.ts';
export {
  listRequests,
  eachRequest,
  likePattern,
  requestOutcomes,
  requestSortColumns,
  type Ref,
  type RequestFilters,
  type RequestOutcome,
  type RequestRow,
  type RequestSort,
} from './db/request-log.ts';
export {
  usageBreakdown,
  usageDimensions,
  usageBuckets,
  type UsageBreakdownQuery,
  type UsageBreakdownRow,
  type UsageDimension,
  type UsageBucket,
} from './db/usage-breakdown.ts';
export { listBreakerEvents, type BreakerEvent, type BreakerEventFilters } from './db/breaker-events.ts';
export {
  buildPriceTable,
  loadPriceTable,
  costMicroUsd,
  priceEntryFor,
  normaliseModelId,
  PriceTableFileSchema,
  type PriceTable,
  type PriceTableFile,
  type PriceEntry,
  type PricedUsage,
} from './pricing/price-table.ts';
export { defaultPriceTable } from './pricing/default-prices.ts';
export {
  insertAudit,
  readAudit,
  auditSortable,
  type AuditEntry,
  type AuditRow,
  type AuditFilter,
} from './db/audit-rows.ts';
export {
  insertAdminSession,
  readAdminSession,
  touchAdminSession,
  revokeAdminSession,
  revokeSubjectSessions,
  listAdminSessions,
  adminSessionSortable,
  type AdminSessionEntry,
  type AdminSessionRow,
} from './db/admin-sessions.ts';
export {
  resolveRuntimeSecrets,
  watchRuntimeSecrets,
  databaseUrlOf,
  secretSources,
  type ResolvedSecrets,
} from './runtime-secrets.ts';
export { validateMessagesRequest } from './anthropic-request-schema.ts';
export {
  budgetPeriods,
  defaultSoftLimitPercent,
  microUsdPerUsd,
  periodBounds,
  periodBudget,
  type Budget,
  type BudgetPeriod,
  type Limits,
  type PeriodBudget,
  type RateLimits,
  type RateLimitSet,
} from './governance/limits.ts';
export {
  readSpend,
  leaseRequests,
  addWindowTokens,
  pruneRateWindows,
  claimStreamSlot,
  releaseStreamSlots,
  renewStreamSlots,
  readTeamBudgets,
  upsertTeamBudget,
  deleteTeamBudget,
  type Spend,
  type SpendScope,
  type TokenDelta,
  type WindowTotals,
} from './db/governance-rows.ts';
export {
  budgetCrossingChannel,
  recordBudgetCrossing,
  claimBudgetCrossings,
  unclaimBudgetCrossing,
  pruneBudgetCrossings,
  type BudgetCrossing,
  type CrossingKind,
  type CrossingResourceKind,
  type PendingCrossing,
} from './db/budget-crossings.ts';
