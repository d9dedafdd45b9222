export { LocalOperator, type LocalOperatorOptions, type ReadyKey, type SyncReport } from './local/local-operator.ts';
export {
  identityKey,
  identityOf,
  manifestFiles,
  readManifestFolder,
  type ManifestSnapshot,
} from './local/manifest-folder.ts';
export { LocalSecretStore } from './local/local-secret-store.ts';
export {
  reconcileAccessKey,
  baseUrlFor,
  type AccessKeyDeps,
  type AccessKeyOutcome,
} from './reconcile/reconcile-access-key.ts';
export { reconcileUser } from './reconcile/reconcile-user.ts';
export { reconcileBedrockKey, type BedrockKeyDeps } from './reconcile/reconcile-bedrock-key.ts';
export {
  ownerAnnotation,
  ownerUidAnnotation,
  ownerFromAnnotation,
  type SecretStore,
  type SecretOwner,
  type StoredSecret,
} from './reconcile/secret-store.ts';
export type { Condition, ResourceStatus } from './reconcile/conditions.ts';
export {
  parseResource,
  secretData,
  group,
  version,
  proxyUserSpec,
  accessKeySpec,
  bedrockKeySpec,
  teamBudgetSpec,
  teamBudgetName,
  budgetSpec,
  rateLimitsSpec,
  identitySpec,
  selfServiceSpec,
  routing,
  singleLine,
  multiLine,
  singleLineForbidden,
  multiLineForbidden,
  multiLinePattern,
  singleLinePattern,
  dnsSubdomainPattern,
  dnsLabelPattern,
  secretKeyPattern,
  anthropicModelPattern,
  bedrockModelPattern,
  regionPattern,
  type ProxyUser,
  type AccessKey,
  type BedrockKey,
  type TeamBudget,
  type Secret,
  type Resource,
} from './resources.ts';
export { renderCrds, renderAdmissionPolicy, admissionPolicyFile, toStructural } from './crds.ts';
export {
  crossFieldRules,
  crossFieldProblems,
  admissionPolicy,
  admissionPolicyName,
  type CrossFieldRule,
} from './admission.ts';
export {
  adminRules,
  operatorRules,
  leaderElectionRules,
  webhookRules,
  webhookSecretRules,
  type PolicyRule,
} from './rbac.ts';
export { kindOrder, type Kind } from './kinds.ts';
