export {
  ClaudeCodeProxyChart,
  cpuCores,
  parseMebibytes,
  type ClaudeCodeProxyProps,
  type Component,
} from './workloads.ts';
export { buildApp, resolveValues, chartAppVersion, type SynthOptions, type ValuesOverrides } from './app.ts';
export { valuesSchema, renderValuesSchema, componentFields, configurableFields, type ChartValues } from './values.ts';
export {
  adminRules,
  operatorRules,
  leaderElectionRules,
  webhookRules,
  webhookSecretRules,
  type PolicyRule,
} from './rbac.ts';
