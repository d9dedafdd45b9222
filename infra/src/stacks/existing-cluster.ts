import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ValuesOverrides } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';
import { certificateArnFor } from './dns.ts';
import { chartOverrides, componentRoles, type Component, type RuntimeSecrets } from './workload-access.ts';

export interface ExistingClusterStackProps extends StackProps, RuntimeSecrets {
  readonly database: rds.DatabaseCluster;
}

/**
 * The existing-cluster profile: what the estate adds to a cluster the company already runs — the
 * IRSA roles (trusting that cluster's OIDC provider), the pods' way to Aurora, and the chart's
 * values as an output for the platform team's `helm install` (or their GitOps tool). CDK holds no
 * kubectl access to that cluster.
 */
export class ExistingClusterStack extends Stack {
  readonly roles: Record<Component, iam.Role>;
  readonly chartValues: ValuesOverrides;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: ExistingClusterStackProps) {
    super(scope, id, props);
    const provider = iam.OpenIdConnectProvider.fromOpenIdConnectProviderArn(this, 'Oidc', settings.oidcProviderArn);
    const access = { ...props, databaseSecret: props.database.secret as secretsmanager.ISecret };
    this.roles = componentRoles(this, provider, settings, access);
    new ec2.CfnSecurityGroupIngress(this, 'DatabaseFromPods', {
      groupId: props.database.connections.securityGroups[0]?.securityGroupId ?? '',
      sourceSecurityGroupId: settings.podSecurityGroupId,
      ipProtocol: 'tcp',
      fromPort: 5432,
      toPort: 5432,
      description: 'claude-code-proxy pods to Aurora',
    });
    this.chartValues = chartOverrides(settings, this.region, this.roles, certificateArnFor(this, settings));
    new CfnOutput(this, 'HelmValues', {
      description: `helm install ccproxy charts/claude-code-proxy -n ${settings.namespace} -f <this value as a file>`,
      value: Stack.of(this).toJsonString(this.chartValues),
    });
  }
}
