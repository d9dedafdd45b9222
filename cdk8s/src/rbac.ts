// One place for every component's rules (operator/src/rbac.ts): the tests bind the same rules to
// the identities they run the operator and the admin facade as.
export {
  adminRules,
  operatorRules,
  leaderElectionRules,
  webhookRules,
  webhookSecretRules,
  type PolicyRule,
} from '@ccproxy/operator';
