export { buildInfra, type InfraStacks } from './app.ts';
export { defaultSettings, settingsFromContext, type InfraSettings } from './settings.ts';
export { NetworkStack } from './stacks/network.ts';
export { SecretsStack } from './stacks/secrets.ts';
export { DatabaseStack, type DatabaseStackProps } from './stacks/database.ts';
export { ClusterStack, type ClusterStackProps } from './stacks/cluster.ts';
export { MonitoringStack, type MonitoringStackProps } from './stacks/monitoring.ts';
