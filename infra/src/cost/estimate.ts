import { prices, usage } from './prices.ts';

/** One line of the monthly estimate: what, how many, and from where the count came. */
export interface CostLine {
  readonly item: string;
  readonly count: number;
  readonly monthly: number;
  readonly from: 'template' | 'workloads' | 'usage assumption';
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}
export type Templates = ReadonlyArray<{ readonly Resources?: Record<string, CfnResource> }>;

/** A workload as rendered: replicas (the HPA's floor) and one pod's requests. */
export interface PodSpec {
  readonly name: string;
  readonly replicas: number;
  readonly cpu: number;
  readonly memoryMb: number;
}

export interface EstimateOptions {
  /** fargate: pods on the estate's own Fargate cluster, rounded up to Fargate sizes. shared-nodes:
   * pods on a cluster the company runs, priced at their requests (at Fargate's unit rates). */
  readonly pods: 'fargate' | 'shared-nodes';
  /** The Ingress joins an ALB the company already runs (an IngressGroup): only its load is ours. */
  readonly sharedAlb: boolean;
}

const month = prices.hoursPerMonth;
const round = (value: number) => Math.round(value * 100) / 100;

/** The monthly cost of an estate, from its synthesized templates and its rendered workloads. */
export function estimate(templates: Templates, workloads: readonly PodSpec[], options: EstimateOptions): CostLine[] {
  const resources = templates.flatMap((t) => Object.values(t.Resources ?? {}));
  const count = (type: string, where: (r: CfnResource) => boolean = () => true) =>
    resources.filter((r) => r.Type === type && where(r)).length;
  const lines: CostLine[] = [];
  const add = (item: string, n: number, unitMonthly: number, from: CostLine['from'] = 'template') => {
    if (n > 0) lines.push({ item, count: n, monthly: round(n * unitMonthly), from });
  };

  add('EKS control plane', count('AWS::EKS::Cluster'), prices.eksClusterHour * month);
  const natGateways = count('AWS::EC2::NatGateway');
  add('NAT gateway', natGateways, prices.natGatewayHour * month);
  add('NAT gateway data (egress)', natGateways > 0 ? 1 : 0, usage.egressGb * prices.natGatewayGb, 'usage assumption');
  const natInstances = count('AWS::EC2::Instance');
  add('NAT instance (t4g.nano, 8 GB gp3)', natInstances, prices.t4gNanoHour * month + 8 * prices.ebsGp3GbMonth);
  add('public IPv4 address (NAT)', count('AWS::EC2::EIP') + natInstances, prices.publicIpv4Hour * month);
  add('data out to the internet', 1, usage.egressGb * prices.dataOutGb, 'usage assumption');
  add(
    'VPC interface endpoint (per AZ)',
    resources
      .filter((r) => r.Type === 'AWS::EC2::VPCEndpoint' && r.Properties?.VpcEndpointType === 'Interface')
      .reduce((n, r) => n + ((r.Properties?.SubnetIds as unknown[] | undefined)?.length ?? 1), 0),
    prices.interfaceEndpointAzHour * month,
  );
  albLines(add, options.sharedAlb);
  auroraLines(add, resources, count);
  add('KMS key', count('AWS::KMS::Key'), prices.kmsKeyMonth);
  add('Secrets Manager secret', count('AWS::SecretsManager::Secret'), prices.secretMonth);
  add('CloudWatch alarm', count('AWS::CloudWatch::Alarm'), prices.alarmMonth);
  add('CloudWatch Logs ingestion', 1, usage.logsGb * prices.logsIngestGb, 'usage assumption');
  for (const pod of [...workloads, ...systemPods(resources)]) {
    const cost = options.pods === 'fargate' ? fargatePodMonthly(pod) : requestedMonthly(pod);
    add(`pod ${pod.name} (${describePod(pod, options.pods)})`, pod.replicas, cost, 'workloads');
  }
  return lines;
}

export const total = (lines: readonly CostLine[]) => round(lines.reduce((sum, line) => sum + line.monthly, 0));

type Add = (item: string, n: number, unitMonthly: number, from?: CostLine['from']) => void;

function albLines(add: Add, shared: boolean): void {
  if (!shared) {
    add('Application Load Balancer', 1, prices.albHour * month);
    add('public IPv4 address (ALB, one per AZ)', 2, prices.publicIpv4Hour * month);
  }
  add('ALB load units', 1, usage.albLcus * prices.albLcuHour * month, 'usage assumption');
}

function auroraLines(add: Add, resources: readonly CfnResource[], count: (type: string) => number): void {
  const cluster = resources.find((r) => r.Type === 'AWS::RDS::DBCluster');
  const scaling = cluster?.Properties?.ServerlessV2ScalingConfiguration as { MinCapacity?: number } | undefined;
  const minAcu = scaling?.MinCapacity ?? 0;
  // Serverless v2 instances bill at least their floor around the clock: the proxy's pool keeps
  // connections open, so the cluster never pauses.
  add(
    `Aurora Serverless v2 instance at its ${minAcu} ACU floor`,
    count('AWS::RDS::DBInstance'),
    minAcu * prices.auroraAcuHour * month,
  );
  add(
    'Aurora storage',
    cluster === undefined ? 0 : 1,
    usage.auroraStorageGb * prices.auroraStorageGbMonth,
    'usage assumption',
  );
}

/** kube-system pods our own cluster runs on Fargate (each at the smallest Fargate size). */
function systemPods(resources: readonly CfnResource[]): PodSpec[] {
  const small = { cpu: 0.1, memoryMb: 128 };
  const pods: PodSpec[] = [];
  if (resources.some((r) => r.Type === 'AWS::EKS::Cluster')) pods.push({ name: 'coredns', replicas: 2, ...small });
  const alb = resources.find(
    (r) => r.Type === 'Custom::AWSCDK-EKS-HelmChart' && r.Properties?.Chart === 'aws-load-balancer-controller',
  );
  if (alb !== undefined) {
    // Values is JSON text, or an Fn::Join of it around deploy-time tokens: read the one number.
    const replicas = /replicaCount\\?":(\d+)/.exec(JSON.stringify(alb.Properties?.Values ?? ''))?.[1];
    pods.push({ name: 'aws-load-balancer-controller', replicas: Number(replicas ?? 2), ...small });
  }
  if (resources.some((r) => r.Type === 'AWS::EKS::Addon' && r.Properties?.AddonName === 'metrics-server'))
    pods.push({ name: 'metrics-server', replicas: 2, ...small });
  return pods;
}

/** Fargate's sizes: vCPU, and the memory (GB) each allows. */
const fargateSizes: ReadonlyArray<readonly [number, readonly number[]]> = [
  [0.25, [0.5, 1, 2]],
  [0.5, [1, 2, 3, 4]],
  [1, [2, 3, 4, 5, 6, 7, 8]],
  [2, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]],
  [4, [8, 12, 16, 20, 24, 28, 30]],
];

/** The Fargate size a pod gets: its requests plus the kubelet's 256 MB, rounded up. */
export function fargateSize(pod: PodSpec): { cpu: number; memoryGb: number } {
  const memoryGb = (pod.memoryMb + usage.fargatePodOverheadMb) / 1024;
  for (const [cpu, memories] of fargateSizes) {
    const memory = memories.find((m) => m >= memoryGb);
    if (cpu >= pod.cpu && memory !== undefined) return { cpu, memoryGb: memory };
  }
  throw new Error(`pod ${pod.name} is larger than the Fargate sizes this estimate knows`);
}

function fargatePodMonthly(pod: PodSpec): number {
  const size = fargateSize(pod);
  return (size.cpu * prices.fargateVcpuHour + size.memoryGb * prices.fargateGbHour) * month;
}

function requestedMonthly(pod: PodSpec): number {
  return (pod.cpu * prices.fargateVcpuHour + (pod.memoryMb / 1024) * prices.fargateGbHour) * month;
}

function describePod(pod: PodSpec, mode: EstimateOptions['pods']): string {
  if (mode === 'shared-nodes') return `requests ${pod.cpu} vCPU, ${pod.memoryMb} MiB`;
  const size = fargateSize(pod);
  return `Fargate ${size.cpu} vCPU, ${size.memoryGb} GB`;
}
