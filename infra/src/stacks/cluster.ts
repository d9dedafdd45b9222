import { readdirSync, readFileSync } from 'node:fs';
import { KubectlV34Layer } from '@aws-cdk/lambda-layer-kubectl-v34';
import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAllDocuments } from 'yaml';
import { buildApp, type ValuesOverrides } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';
import { aliasToAlb, certificateArnFor } from './dns.ts';
import { chartOverrides, componentRoles, release, type RuntimeSecrets } from './workload-access.ts';

export interface ClusterStackProps extends StackProps, RuntimeSecrets {
  readonly vpc: ec2.IVpc;
  readonly database: rds.DatabaseCluster;
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
  /** The pods' only security group (SecurityGroupPolicy): the network boundary on Fargate. */
  readonly podSecurityGroup: ec2.SecurityGroup;
  /** The chart's values as this stack installs them (the cost estimate renders them too). */
  readonly chartValues: ValuesOverrides;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: ClusterStackProps) {
    super(scope, id, props);
    const ns = settings.namespace;
    // The control plane's log group, made before EKS makes it without a retention.
    const controlPlaneLogs = new logs.LogGroup(this, 'ControlPlaneLogs', {
      logGroupName: `/aws/eks/${settings.prefix}/cluster`,
      retention: settings.logRetentionDays as logs.RetentionDays,
    });
    this.cluster = new eks.FargateCluster(this, 'Cluster', {
      clusterName: settings.prefix,
      version: eks.KubernetesVersion.V1_34,
      endpointAccess: endpointAccess(settings),
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
    this.cluster.node.addDependency(controlPlaneLogs);
    const workloads = this.cluster.addFargateProfile('Workloads', {
      selectors: [{ namespace: ns }],
      subnetSelection: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });

    this.podSecurityGroup = podSecurityGroup(this, props.vpc, settings.vpcCidr, this.cluster, props.database);

    this.logGroup = this.fargateLogging(settings, [this.cluster.defaultProfile, workloads]);
    const access = { ...props, databaseSecret: props.database.secret as secretsmanager.ISecret };
    this.roles = componentRoles(this, this.cluster.openIdConnectProvider, settings, access);

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
    // Security groups for pods: every pod of the release gets the pod security group (and only it),
    // the boundary Fargate enforces (NetworkPolicy is not enforced on Fargate). Applied before the
    // pods: a policy only affects pods created after it.
    const podPolicy = this.cluster.addManifest('PodSecurityGroupPolicy', {
      apiVersion: 'vpcresources.k8s.aws/v1beta1',
      kind: 'SecurityGroupPolicy',
      metadata: { name: `${release}-pods`, namespace: ns },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/instance': release } },
        securityGroups: { groupIds: [this.podSecurityGroup.securityGroupId] },
      },
    });
    podPolicy.node.addDependency(namespace);
    this.chartValues = chartOverrides(settings, this.region, this.roles, certificateArnFor(this, settings));
    const { chart } = buildApp({ namespace: ns, releaseName: release, overrides: this.chartValues });
    const workloadsManifest = this.cluster.addCdk8sChart('Workloads', chart);
    workloadsManifest.node.addDependency(namespace, crdManifest, workloads, podPolicy);
    aliasToAlb(this, settings, this.cluster, { name: release, namespace: ns, after: workloadsManifest });
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

function endpointAccess(settings: InfraSettings): eks.EndpointAccess {
  if (settings.endpointAccess === 'private') return eks.EndpointAccess.PRIVATE;
  return settings.apiCidrs.length === 0
    ? eks.EndpointAccess.PUBLIC_AND_PRIVATE
    : eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(...settings.apiCidrs);
}

/**
 * The pods' security group, egress limited to what they call: HTTPS (Anthropic, whose addresses
 * are not fixed, Bedrock, KMS, Secrets Manager, STS and the EKS API), DNS to CoreDNS, Postgres
 * to Aurora. Ingress: the ALB (from the VPC) on the three ports, the control plane to the kubelet
 * and to the operator's admission webhook.
 */
function podSecurityGroup(
  scope: Construct,
  vpc: ec2.IVpc,
  vpcCidr: string,
  cluster: eks.Cluster,
  database: rds.DatabaseCluster,
): ec2.SecurityGroup {
  const pods = new ec2.SecurityGroup(scope, 'PodSecurityGroup', {
    vpc,
    allowAllOutbound: false,
    description: 'claude-code-proxy pods (security groups for pods): only the traffic they need',
  });
  const clusterSg = ec2.Peer.securityGroupId(cluster.clusterSecurityGroupId);
  const databaseSg = database.connections.securityGroups[0]?.securityGroupId ?? '';
  pods.addEgressRule(
    ec2.Peer.anyIpv4(),
    ec2.Port.tcp(443),
    'HTTPS: Anthropic, Bedrock, KMS, Secrets Manager, STS, EKS API',
  );
  pods.addEgressRule(clusterSg, ec2.Port.udp(53), 'DNS to CoreDNS');
  pods.addEgressRule(clusterSg, ec2.Port.tcp(53), 'DNS to CoreDNS');
  pods.addEgressRule(ec2.Peer.securityGroupId(databaseSg), ec2.Port.tcp(5432), 'Postgres to Aurora');
  pods.addIngressRule(ec2.Peer.ipv4(vpcCidr), ec2.Port.tcpRange(8080, 8082), 'ALB targets and health checks');
  pods.addIngressRule(clusterSg, ec2.Port.tcp(10250), 'control plane and metrics-server to the kubelet');
  // Without it the API server's calls to the operator's admission webhook would wait out its 2 s
  // timeout on every create (failurePolicy Ignore: slow, not refused).
  pods.addIngressRule(clusterSg, ec2.Port.tcp(9443), "control plane to the operator's admission webhook");
  // The other ends: CoreDNS and the API endpoint (cluster security group) and Aurora accept the
  // pods. Declared here so the database stack does not depend on this one.
  const ingress = (id: string, groupId: string, protocol: string, port: number, description: string) =>
    new ec2.CfnSecurityGroupIngress(scope, id, {
      groupId,
      sourceSecurityGroupId: pods.securityGroupId,
      ipProtocol: protocol,
      fromPort: port,
      toPort: port,
      description,
    });
  ingress('DatabaseFromPods', databaseSg, 'tcp', 5432, 'claude-code-proxy pods to Aurora');
  ingress('DnsUdpFromPods', cluster.clusterSecurityGroupId, 'udp', 53, 'claude-code-proxy pods to CoreDNS');
  ingress('DnsTcpFromPods', cluster.clusterSecurityGroupId, 'tcp', 53, 'claude-code-proxy pods to CoreDNS');
  ingress('ApiFromPods', cluster.clusterSecurityGroupId, 'tcp', 443, 'claude-code-proxy pods to the EKS API');
  return pods;
}
