import { readdirSync, readFileSync } from 'node:fs';
import { KubectlV34Layer } from '@aws-cdk/lambda-layer-kubectl-v34';
import { CfnJson, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

export interface ClusterStackProps extends StackProps {
  readonly vpc: ec2.IVpc;
  readonly database: rds.DatabaseCluster;
  readonly bedrockKey: kms.IKey;
  readonly hasherSecret: secretsmanager.ISecret;
  readonly adminSecret: secretsmanager.ISecret;
  readonly planApiKeySecret: secretsmanager.ISecret;
}

const crdsDir = new URL('../../../crds/', import.meta.url);
const release = 'ccproxy';

/**
 * EKS on Fargate for the three workloads: a Fargate profile per namespace that runs pods, one
 * IRSA role per component with exactly the AWS actions it uses, Fargate logging to CloudWatch
 * Logs, the AWS Load Balancer Controller, and the cdk8s workloads (their Ingress makes the ALB) with the CRDs.
 */
export class ClusterStack extends Stack {
  readonly cluster: eks.FargateCluster;
  readonly roles: Record<'operator' | 'proxy' | 'admin', iam.Role>;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: ClusterStackProps) {
    super(scope, id, props);
    const ns = settings.namespace;
    this.cluster = new eks.FargateCluster(this, 'Cluster', {
      version: eks.KubernetesVersion.V1_34,
      vpc: props.vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      kubectlProviderOptions: { kubectlLayer: new KubectlV34Layer(this, 'Kubectl') },
      albController: { version: eks.AlbControllerVersion.V2_17_1 },
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
    const dbSecret = props.database.secret as secretsmanager.ISecret;
    this.roles = {
      operator: this.irsaRole('operator', ns, [
        // Wraps each Bedrock API key's fresh data key (EncryptCommand with an encryption context).
        new iam.PolicyStatement({ actions: ['kms:Encrypt'], resources: [props.bedrockKey.keyArn] }),
        secretsRead([props.hasherSecret, dbSecret]),
      ]),
      proxy: this.irsaRole('proxy', ns, [
        // Unwraps data keys to use a Bedrock API key; never Encrypt.
        new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [props.bedrockKey.keyArn] }),
        secretsRead([props.hasherSecret, dbSecret, props.planApiKeySecret]),
      ]),
      admin: this.irsaRole('admin', ns, [secretsRead([props.adminSecret, dbSecret])]),
    };

    // The load balancer controller injects a readiness gate into pods of a labelled namespace: a
    // new proxy pod counts as ready only once its ALB target is healthy, so a rollout never has
    // fewer serving targets than it thinks.
    const namespace = this.cluster.addManifest('Namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled' } },
    });
    // The HPA's CPU signal: without a metrics source the autoscaler is inert. The EKS community
    // add-on runs on Fargate in kube-system (the default profile).
    new eks.Addon(this, 'MetricsServer', { cluster: this.cluster, addonName: 'metrics-server' });
    const crds = readdirSync(crdsDir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) =>
        parseAllDocuments(readFileSync(new URL(f, crdsDir), 'utf8')).map((d) => d.toJS() as Record<string, unknown>),
      );
    const crdManifest = this.cluster.addManifest('Crds', ...crds);
    const { chart } = buildApp({
      namespace: ns,
      releaseName: release,
      overrides: {
        image: { repository: settings.image },
        aws: { region: this.region },
        ...(settings.domain === '' ? {} : { publicUrl: `https://${settings.domain}` }),
        operator: { serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': this.roles.operator.roleArn } } },
        proxy: {
          serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': this.roles.proxy.roleArn } },
          config: { CCPROXY_CLOUDWATCH_EMF: true },
        },
        admin: { serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': this.roles.admin.roleArn } } },
        // One ALB: /ak/ on `domain` to the proxy; the admin on `adminDomain`, only from adminCidrs.
        ingress: {
          enabled: true,
          host: settings.domain,
          adminHost: settings.adminDomain,
          adminSourceRanges: settings.adminCidrs,
          annotations: {
            'alb.ingress.kubernetes.io/ssl-policy': 'ELBSecurityPolicy-TLS13-1-2-2021-06',
            ...(settings.certificateArn === ''
              ? {}
              : { 'alb.ingress.kubernetes.io/certificate-arn': settings.certificateArn }),
          },
        },
      },
    });
    const workloadsManifest = this.cluster.addCdk8sChart('Workloads', chart);
    workloadsManifest.node.addDependency(namespace, crdManifest, workloads);
    // The controller's webhooks must exist before the Ingress and Services they act on.
    if (this.cluster.albController !== undefined) workloadsManifest.node.addDependency(this.cluster.albController);
  }

  /** A role only `system:serviceaccount:<ns>:<release>-<component>` of this cluster can assume (IRSA). */
  private irsaRole(component: string, namespace: string, statements: iam.PolicyStatement[]): iam.Role {
    const provider = this.cluster.openIdConnectProvider;
    // The issuer is a deploy-time value, and condition keys must be strings: CfnJson resolves both.
    const conditions = new CfnJson(this, `${component}IrsaConditions`, {
      value: {
        [`${provider.openIdConnectProviderIssuer}:sub`]: `system:serviceaccount:${namespace}:${release}-${component}`,
        [`${provider.openIdConnectProviderIssuer}:aud`]: 'sts.amazonaws.com',
      },
    });
    const role = new iam.Role(this, `${component}Role`, {
      description: `claude-code-proxy ${component} (IRSA)`,
      assumedBy: new iam.OpenIdConnectPrincipal(provider).withConditions({ StringEquals: conditions }),
    });
    for (const statement of statements) role.addToPolicy(statement);
    return role;
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

function secretsRead(secrets: secretsmanager.ISecret[]): iam.PolicyStatement {
  // Runtime secrets by ARN; DescribeSecret lets a process notice a rotation without reading the value.
  return new iam.PolicyStatement({
    actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
    resources: secrets.map((s) => s.secretArn),
  });
}
