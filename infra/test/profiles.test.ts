import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInfra, type InfraStacks } from '../src/app.ts';
import { estateCost, renderedPods } from '../src/cost/estate-cost.ts';
import { estimate, fargateSize, total, type CostLine } from '../src/cost/estimate.ts';
import { sampleExistingCluster } from '../src/cost/main.ts';
import { prices } from '../src/cost/prices.ts';
import { profileNames, type Profile } from '../src/settings.ts';
import { cfnLint, cfnLintPython } from './cfn-lint.ts';

interface Synthesized {
  readonly stacks: InfraStacks;
  readonly cost: CostLine[];
  readonly outdir: string;
}

const synthesized = new Map<Profile, Synthesized>();
const get = (profile: Profile): Synthesized => {
  const found = synthesized.get(profile);
  if (found === undefined) throw new Error(`${profile} not synthesized`);
  return found;
};
const base = {
  region: prices.region,
  domain: 'proxy.example.com',
  certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0b7d3a6c-1111-2222-3333-444455556666',
};

beforeAll(async () => {
  await cfnLintPython();
  for (const profile of profileNames) {
    const outdir = await mkdtemp(join(tmpdir(), `ccproxy-profile-${profile}-`));
    const context = { ...base, profile, ...(profile === 'existing-cluster' ? sampleExistingCluster : {}) };
    const app = new App({ outdir, context });
    const stacks = buildInfra(app);
    synthesized.set(profile, { stacks, cost: estateCost(app, stacks), outdir });
  }
}, 10 * 60_000);
afterAll(async () => {
  for (const { outdir } of synthesized.values()) await rm(outdir, { recursive: true, force: true });
});

describe('the three profiles', () => {
  it('price within their targets: dev ≤ $225, existing-cluster ≤ $80 a month beyond the cluster', () => {
    expect(total(get('dev').cost)).toBeLessThanOrEqual(225);
    expect(total(get('existing-cluster').cost)).toBeLessThanOrEqual(80);
    // Every line is priced from the template or the rendered workloads, or is a named traffic assumption.
    for (const profile of profileNames)
      for (const line of get(profile).cost) expect(line.monthly, line.item).toBeGreaterThan(0);
  });

  it('production survives an AZ: a NAT gateway and a database instance per AZ, two proxies, PDBs', () => {
    const { stacks, cost } = get('production');
    const network = Template.fromStack(stacks.network as NonNullable<InfraStacks['network']>);
    network.resourceCountIs('AWS::EC2::NatGateway', 2);
    // Each private subnet routes to the NAT gateway in its own AZ.
    const routes = Object.values(
      network.findResources('AWS::EC2::Route', { Properties: { NatGatewayId: Match.anyValue() } }),
    );
    expect(
      new Set(
        routes.map((r) => JSON.stringify((r as { Properties: { NatGatewayId: unknown } }).Properties.NatGatewayId)),
      ).size,
    ).toBe(2);
    Template.fromStack(stacks.database).resourceCountIs('AWS::RDS::DBInstance', 2);
    const pods = cost.filter((line) => line.from === 'workloads');
    expect(pods.find((line) => line.item.startsWith('pod ccproxy-proxy'))?.count).toBeGreaterThanOrEqual(2);
    expect(pods.find((line) => line.item.startsWith('pod ccproxy-operator'))?.count).toBe(2);
    const values = stacks.cluster?.chartValues as { proxy: { podDisruptionBudget: { minAvailable: number } } };
    expect(values.proxy.podDisruptionBudget.minAvailable).toBe(1);
    Template.fromStack(stacks.cluster as NonNullable<InfraStacks['cluster']>).hasResourceProperties('AWS::EKS::Addon', {
      AddonName: 'metrics-server',
    });
  });

  it('dev is one of each: a NAT instance, no reader, one replica, no autoscaler', () => {
    const { stacks } = get('dev');
    const network = Template.fromStack(stacks.network as NonNullable<InfraStacks['network']>);
    network.resourceCountIs('AWS::EC2::NatGateway', 0);
    network.hasResourceProperties('AWS::EC2::Instance', { InstanceType: 't4g.nano', SourceDestCheck: false });
    Template.fromStack(stacks.database).resourceCountIs('AWS::RDS::DBInstance', 1);
    const cluster = Template.fromStack(stacks.cluster as NonNullable<InfraStacks['cluster']>);
    cluster.resourceCountIs('AWS::EKS::Addon', 0);
    const values = stacks.cluster?.chartValues as { proxy: { replicas: number; autoscaling: { enabled: boolean } } };
    expect(values.proxy).toMatchObject({ replicas: 1, autoscaling: { enabled: false } });
  });

  it('existing-cluster adds no network or cluster: roles trusting the given provider, Aurora in the given VPC, chart values out', () => {
    const { stacks } = get('existing-cluster');
    expect(stacks.network).toBeUndefined();
    expect(stacks.cluster).toBeUndefined();
    const access = Template.fromStack(stacks.existing as NonNullable<InfraStacks['existing']>);
    for (const component of ['operator', 'proxy', 'admin'])
      access.hasResourceProperties('AWS::IAM::Role', { Description: `claude-code-proxy ${component} (IRSA)` });
    const trust = JSON.stringify(access.toJSON());
    expect(trust).toContain(sampleExistingCluster.oidcProviderArn);
    expect(trust).toContain('system:serviceaccount:ccproxy:ccproxy-proxy');
    access.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      SourceSecurityGroupId: sampleExistingCluster.podSecurityGroupId,
      FromPort: 5432,
    });
    Template.fromStack(stacks.database).hasResourceProperties('AWS::RDS::DBSubnetGroup', {
      SubnetIds: sampleExistingCluster.privateSubnetIds.split(','),
    });
    const outputs = access.findOutputs('HelmValues');
    const helmValues = JSON.stringify(outputs);
    expect(helmValues).toContain('alb.ingress.kubernetes.io/group.name');
    expect(helmValues).toContain(sampleExistingCluster.albGroup);
  });

  it('refuses existing-cluster without the cluster it installs into', () => {
    const app = new App({ context: { profile: 'existing-cluster' } });
    expect(() => buildInfra(app)).toThrow(/existing-cluster needs context clusterName, vpcId, oidcProviderArn/);
    expect(() => buildInfra(new App({ context: { profile: 'staging' } }))).toThrow(/profile must be one of/);
  });

  it('synthesizes templates that cfn-lint passes, in every profile', async () => {
    for (const profile of ['dev', 'existing-cluster'] as const) {
      const { outdir } = get(profile);
      const templates = (await readdir(outdir)).filter((f) => f.endsWith('.template.json')).map((f) => join(outdir, f));
      const findings = await cfnLint(templates, { regions: [prices.region] });
      const ours = findings.filter(
        (f) => !(f.Rule.Id === 'W3005' && /Provider|LogRetention/.test(String(f.Location.Path?.[1] ?? ''))),
      );
      expect(ours.map((f) => `${profile}: ${f.Rule.Id} ${f.Message}`)).toEqual([]);
    }
  });
});

describe('the cost estimate', () => {
  it("rounds pods up to Fargate's sizes with the kubelet's 256 MB", () => {
    expect(fargateSize({ name: 'a', replicas: 1, cpu: 0.05, memoryMb: 128 })).toEqual({ cpu: 0.25, memoryGb: 0.5 });
    expect(fargateSize({ name: 'b', replicas: 1, cpu: 0.25, memoryMb: 256 })).toEqual({ cpu: 0.25, memoryGb: 0.5 });
    expect(fargateSize({ name: 'c', replicas: 1, cpu: 0.25, memoryMb: 512 })).toEqual({ cpu: 0.25, memoryGb: 1 });
    expect(fargateSize({ name: 'd', replicas: 1, cpu: 0.3, memoryMb: 3000 })).toEqual({ cpu: 0.5, memoryGb: 4 });
    expect(() => fargateSize({ name: 'e', replicas: 1, cpu: 64, memoryMb: 1 })).toThrow(
      /larger than the Fargate sizes/,
    );
  });

  it('counts what the template holds and the HPA floor of each Deployment', () => {
    const templates = [
      {
        Resources: {
          a: { Type: 'AWS::EKS::Cluster' },
          b: { Type: 'AWS::EC2::NatGateway' },
          c: { Type: 'AWS::EC2::EIP' },
          d: { Type: 'AWS::RDS::DBCluster', Properties: { ServerlessV2ScalingConfiguration: { MinCapacity: 1 } } },
          e: { Type: 'AWS::RDS::DBInstance' },
        },
      },
    ];
    const pods = renderedPods(
      [
        'kind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ resources: { requests: { cpu: 500m, memory: 1Gi } } }] } } }',
        'kind: HorizontalPodAutoscaler\nmetadata: { name: web }\nspec: { minReplicas: 3, scaleTargetRef: { name: web } }',
      ].join('\n---\n'),
    );
    expect(pods).toEqual([{ name: 'web', replicas: 3, cpu: 0.5, memoryMb: 1024 }]);
    const lines = estimate(templates, pods, { pods: 'fargate', sharedAlb: false });
    const line = (prefix: string) => lines.find((l) => l.item.startsWith(prefix));
    expect(line('EKS control plane')?.monthly).toBe(73);
    expect(line('NAT gateway')?.monthly).toBe(32.85);
    expect(line('Aurora Serverless v2')?.monthly).toBe(87.6);
    expect(line('pod web')).toMatchObject({ count: 3, monthly: 63.79 });
    expect(line('pod coredns')?.count).toBe(2);
  });
});
