import { readdirSync, readFileSync } from 'node:fs';
import { KubectlV34Layer } from '@aws-cdk/lambda-layer-kubectl-v34';
import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAllDocuments } from 'yaml';
import { buildApp, type ValuesOverrides } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';
import { chartOverrides, componentRoles, release } from './workload-access.ts';

export interface ClusterStackProps extends StackProps {
  readonly vpc: ec2.IVpc;
  readonly database: rds.DatabaseCluster;
  readonly bedrockKey: kms.IKey;
  readonly hasherSecret: secretsmanager.ISecret;
  readonly adminSecret: secretsmanager.ISecret;
  readonly planApiKeySecret: secretsmanager.ISecret;
}

const crdsDir = new URL('../../../crds/', import.meta.url);

/**
 * EKS on Fargate for the three workloads: a Fargate profile per namespace that runs pods, one
 * IRSA role per component with exactly the AWS actions it uses, Fargate logging to CloudWatch
 * Logs, the AWS Load Balancer Controller, and the cdk8s workloads (their Ingress makes the ALB) with the CRDs.
 */
export class ClusterStack extends Stack {
  readonly cluster: eks.FargateCluster;
  readonly roles: Record<'operator' | 'proxy' | 'admin', iam.Role>;
  readonly logGroup: logs.LogGroup;
  /** The chart's values as this stack installs them (the cost estimate renders them too). */
  readonly chartValues: ValuesOverrides;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: ClusterStackProps) {
    super(scope, id, props);
    const ns = settings.namespace;
    this.cluster = new eks.FargateCluster(this, 'Cluster', {
      version: eks.KubernetesVersion.V1_34,
      vpc: props.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      kubectlProviderOptions: { kubectlLayer: new KubectlV34Layer(this, 'Kubectl') },
      albController: {
        version: eks.AlbControllerVersion.V2_17_1,
        // dev: one controller pod is enough (a Fargate pod costs about $9 a month).
        ...(settings.profile === 'dev' ? { additionalHelmChartValues: { replicaCount: 1 } } : {}),
      },
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
      ],
    });
    const workloads = this.cluster.addFargateProfile('Workloads', {
      selectors: [{ namespace: ns }],
      subnetSelection: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });

    // Fargate pods run in the cluster security group: only it may reach Postgres. Declared here
    // (not with database.connections) so the database stack does not depend on this one.
    new ec2.CfnSecurityGroupIngress(this, 'DatabaseFromPods', {
      groupId: props.database.connections.securityGroups[0]?.securityGroupId ?? '',
      sourceSecurityGroupId: this.cluster.clusterSecurityGroupId,
      ipProtocol: 'tcp',
      fromPort: 5432,
      toPort: 5432,
      description: 'claude-code-proxy pods to Aurora',
    });

    this.logGroup = this.fargateLogging(settings, [this.cluster.defaultProfile, workloads]);
    this.roles = componentRoles(this, this.cluster.openIdConnectProvider, ns, {
      ...props,
      databaseSecret: props.database.secret as secretsmanager.ISecret,
    });

    const namespace = this.cluster.addManifest('Namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled' } },
    });
    // The HPA's CPU signal: without a metrics source the autoscaler is inert. The EKS community
    // add-on runs on Fargate in kube-system (the default profile).
    if (settings.proxyAutoscaling)
      new eks.Addon(this, 'MetricsServer', { cluster: this.cluster, addonName: 'metrics-server' });
    const crds = readdirSync(crdsDir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) =>
        parseAllDocuments(readFileSync(new URL(f, crdsDir), 'utf8')).map((d) => d.toJS() as Record<string, unknown>),
      );
    const crdManifest = this.cluster.addManifest('Crds', ...crds);
    this.chartValues = chartOverrides(settings, this.region, this.roles);
    const { chart } = buildApp({ namespace: ns, releaseName: release, overrides: this.chartValues });
    const workloadsManifest = this.cluster.addCdk8sChart('Workloads', chart);
    workloadsManifest.node.addDependency(namespace, crdManifest, workloads);
    // The controller's webhooks must exist before the Ingress and Services they act on.
    if (this.cluster.albController !== undefined) workloadsManifest.node.addDependency(this.cluster.albController);
  }

  /**
   * Fargate's built-in Fluent Bit (the `aws-observability` ConfigMap) ships container logs, EMF
   * metric lines included, to one log group with the seed's retention.
   */
  private fargateLogging(settings: InfraSettings, profiles: eks.FargateProfile[]): logs.LogGroup {
    const group = new logs.LogGroup(this, 'PodLogs', {
      logGroupName: `/${settings.prefix}/pods`,
      retention: settings.logRetentionDays as logs.RetentionDays,
    });
    for (const profile of profiles) {
      profile.podExecutionRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
          resources: [group.logGroupArn, `${group.logGroupArn}:log-stream:*`],
        }),
      );
    }
    const observability = this.cluster.addManifest('AwsObservabilityNamespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'aws-observability', labels: { 'aws-observability': 'enabled' } },
    });
    const config = this.cluster.addManifest('AwsLogging', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'aws-logging', namespace: 'aws-observability' },
      data: {
        'output.conf': [
          '[OUTPUT]',
          '    Name cloudwatch_logs',
          '    Match *',
          `    region ${this.region}`,
          `    log_group_name ${group.logGroupName}`,
          '    log_stream_prefix fargate-',
          '    auto_create_group false',
          '',
        ].join('\n'),
      },
    });
    config.node.addDependency(observability);
    return group;
  }
}
