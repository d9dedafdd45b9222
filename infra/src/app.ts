import { App, Tags } from 'aws-cdk-lib';
import { ClusterStack } from './stacks/cluster.ts';
import { DatabaseStack } from './stacks/database.ts';
import { ExistingClusterStack } from './stacks/existing-cluster.ts';
import { MonitoringStack } from './stacks/monitoring.ts';
import { NetworkStack } from './stacks/network.ts';
import { SecretsStack } from './stacks/secrets.ts';
import { acknowledgeNagFindings } from './nag.ts';
import { settingsFromContext, type InfraSettings } from './settings.ts';

export interface InfraStacks {
  readonly settings: InfraSettings;
  /** Absent in the existing-cluster profile (the company's VPC and cluster are used). */
  readonly network?: NetworkStack;
  readonly secrets: SecretsStack;
  readonly database: DatabaseStack;
  readonly cluster?: ClusterStack;
  /** Only in the existing-cluster profile. */
  readonly existing?: ExistingClusterStack;
  readonly monitoring: MonitoringStack;
}

/**
 * The stacks as the seed splits them (the existing-cluster profile has no network or cluster
 * stack, and a workload-access stack instead), each replaceable on its own: network → secrets →
 * database → cluster (EKS, IRSA, workloads) → monitoring.
 */
export function buildInfra(app: App, settings: InfraSettings = settingsFromContext(app.node)): InfraStacks {
  const env = { region: settings.region, ...(settings.account === undefined ? {} : { account: settings.account }) };
  const name = (stack: string) => `${settings.prefix}-${stack}`;
  const existingCluster = settings.profile === 'existing-cluster';
  const network = existingCluster ? undefined : new NetworkStack(app, name('network'), settings, { env });
  const secrets = new SecretsStack(app, name('secrets'), settings, { env });
  const database = new DatabaseStack(app, name('database'), settings, {
    env,
    ...(network === undefined ? {} : { vpc: network.vpc }),
    key: secrets.databaseKey,
  });
  const access = {
    env,
    database: database.cluster,
    bedrockKey: secrets.bedrockKey,
    hasherSecret: secrets.hasherSecret,
    adminPasswordSecret: secrets.adminPasswordSecret,
    adminSessionSecret: secrets.adminSessionSecret,
    planApiKeySecret: secrets.planApiKeySecret,
    adminOidcClientSecret: secrets.adminOidcClientSecret,
  };
  const cluster =
    network === undefined
      ? undefined
      : new ClusterStack(app, name('cluster'), settings, { ...access, vpc: network.vpc });
  const existing = existingCluster
    ? new ExistingClusterStack(app, name('workload-access'), settings, access)
    : undefined;
  const monitoring = new MonitoringStack(app, name('monitoring'), settings, { env, database: database.cluster });
  Tags.of(app).add('app', 'claude-code-proxy');
  const stacks = {
    settings,
    secrets,
    database,
    monitoring,
    ...(network === undefined ? {} : { network }),
    ...(cluster === undefined ? {} : { cluster }),
    ...(existing === undefined ? {} : { existing }),
  };
  acknowledgeNagFindings(stacks);
  return stacks;
}
