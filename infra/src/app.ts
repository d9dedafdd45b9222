import { App, Tags } from 'aws-cdk-lib';
import { ClusterStack } from './stacks/cluster.ts';
import { DatabaseStack } from './stacks/database.ts';
import { MonitoringStack } from './stacks/monitoring.ts';
import { NetworkStack } from './stacks/network.ts';
import { SecretsStack } from './stacks/secrets.ts';
import { settingsFromContext, type InfraSettings } from './settings.ts';

export interface InfraStacks {
  readonly network: NetworkStack;
  readonly secrets: SecretsStack;
  readonly database: DatabaseStack;
  readonly cluster: ClusterStack;
  readonly monitoring: MonitoringStack;
}

/**
 * The stacks as the seed splits them, each replaceable on its own: network → secrets →
 * database → cluster (EKS, IRSA, workloads) → monitoring.
 */
export function buildInfra(app: App, settings: InfraSettings = settingsFromContext(app.node)): InfraStacks {
  const env = { region: settings.region, ...(settings.account === undefined ? {} : { account: settings.account }) };
  const name = (stack: string) => `${settings.prefix}-${stack}`;
  const network = new NetworkStack(app, name('network'), settings, { env });
  const secrets = new SecretsStack(app, name('secrets'), settings, { env });
  const database = new DatabaseStack(app, name('database'), settings, {
    env,
    vpc: network.vpc,
    key: secrets.databaseKey,
  });
  const cluster = new ClusterStack(app, name('cluster'), settings, {
    env,
    vpc: network.vpc,
    database: database.cluster,
    bedrockKey: secrets.bedrockKey,
    hasherSecret: secrets.hasherSecret,
    adminSecret: secrets.adminSecret,
    planApiKeySecret: secrets.planApiKeySecret,
  });
  const monitoring = new MonitoringStack(app, name('monitoring'), settings, { env, database: database.cluster });
  Tags.of(app).add('app', 'claude-code-proxy');
  return { network, secrets, database, cluster, monitoring };
}
