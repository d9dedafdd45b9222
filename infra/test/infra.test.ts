import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInfra, type InfraStacks } from '../src/app.ts';
import { CloudWatchEmf, cloudWatchNamespace } from '../../proxy/src/metering/cloudwatch-emf.ts';
import { cfnLint, cfnLintPython, type CfnLintMatch } from './cfn-lint.ts';

interface EmfHead {
  CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }>; Dimensions: string[][] }>;
}
/** A metric and its dimension values, as one comparable string. */
const signature = (name: string, dimensions: Record<string, string>) =>
  `${name}{${Object.entries(dimensions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}}`;

const context = {
  region: 'ap-northeast-2',
  domain: 'proxy.example.com',
  adminDomain: 'proxy-admin.example.com',
  adminCidrs: '10.20.0.0/16,192.0.2.0/24',
  certificateArn: 'arn:aws:acm:ap-northeast-2:123456789012:certificate/0b7d3a6c-1111-2222-3333-444455556666',
  alarmEmail: 'oncall@example.com',
};
let outdir: string;
let stacks: InfraStacks;
const template = (stack: Stack) => Template.fromStack(stack);
/** The default profile (production) has every stack. */
function defined<T>(stack: T | undefined): T {
  if (stack === undefined) throw new Error('stack missing from the production profile');
  return stack;
}

beforeAll(async () => {
  // First run on a machine: installs cfn-lint from PyPI into a cached venv (about 30 s).
  await cfnLintPython();
  outdir = await mkdtemp(join(tmpdir(), 'ccproxy-cdk-'));
  const app = new App({ outdir, context });
  stacks = buildInfra(app);
  app.synth();
}, 10 * 60_000);
afterAll(async () => {
  await rm(outdir, { recursive: true, force: true });
});

/** The statements of the inline policies attached to a role. */
function statementsOf(
  stack: Stack,
  role: { node: { defaultChild?: unknown } },
): Array<{ Action: string | string[]; Resource: unknown; Effect: string }> {
  const id = stack.getLogicalId(role.node.defaultChild as CfnRole);
  const policies = Object.values(template(stack).findResources('AWS::IAM::Policy')) as Array<{
    Properties: {
      Roles: Array<{ Ref: string }>;
      PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown; Effect: string }> };
    };
  }>;
  return policies
    .filter((p) => p.Properties.Roles.some((r) => r.Ref === id))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

describe('the AWS CDK app', () => {
  it('rolls the proxy without cutting streams and gives its HPA a metrics source', () => {
    const cluster = template(defined(stacks.cluster));
    // metrics-server: the HPA reads CPU from it (inert without it).
    cluster.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'metrics-server' });
    // Pods of the workloads' namespace get the ALB readiness gate.
    const manifests = Object.values(cluster.findResources('Custom::AWSCDK-EKS-KubernetesResource')).map((r) =>
      JSON.stringify((r as { Properties: { Manifest: unknown } }).Properties.Manifest),
    );
    expect(manifests.some((m) => m.includes('pod-readiness-gate-inject') && m.includes('Namespace'))).toBe(true);
    // The proxy's target group drains as long as the pod's termination grace.
    const workloads = manifests.find((m) => m.includes('target-group-attributes')) ?? '';
    expect(workloads).toMatch(/deregistration_delay\.timeout_seconds=600/);
    expect(workloads).toMatch(/terminationGracePeriodSeconds\\?":600/);
  });

  it("builds the seed's network: 10.0.0.0/16, two public and two private subnets, a NAT gateway per AZ", () => {
    const network = template(defined(stacks.network));
    network.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.0.0.0/16' });
    network.resourceCountIs('AWS::EC2::Subnet', 4);
    network.resourceCountIs('AWS::EC2::NatGateway', 2);
    network.resourcePropertiesCountIs('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true }, 2);
  });

  it('keeps keys and secrets: rotated, retained KMS keys; generated secrets, none inline', () => {
    const secrets = template(stacks.secrets);
    secrets.resourceCountIs('AWS::KMS::Key', 2);
    secrets.allResources('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ EnableKeyRotation: true }),
    });
    secrets.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'ccproxy/key-hasher-secret',
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
    for (const name of ['ccproxy/admin-password', 'ccproxy/admin-session-secret'])
      secrets.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: name,
        GenerateSecretString: Match.objectLike({ ExcludePunctuation: true }),
      });
    // Every secret the estate makes is generated: no value to type in after deploy.
    for (const secret of Object.values(secrets.findResources('AWS::SecretsManager::Secret')))
      expect((secret as { Properties: object }).Properties).toHaveProperty('GenerateSecretString');
    for (const secret of Object.values(secrets.findResources('AWS::SecretsManager::Secret')))
      expect((secret as { Properties: object }).Properties).not.toHaveProperty('SecretString');
  });

  it('runs Aurora PostgreSQL Serverless v2 encrypted with the customer key, private, 7-day backups', () => {
    const database = template(stacks.database);
    database.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      StorageEncrypted: true,
      KmsKeyId: Match.anyValue(),
      BackupRetentionPeriod: 7,
      DeletionProtection: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    database.allResourcesProperties('AWS::RDS::DBInstance', {
      PubliclyAccessible: false,
      DBInstanceClass: 'db.serverless',
    });
    // Nothing but the pods' security group (a rule in the cluster stack) may reach it.
    database.allResourcesProperties('AWS::EC2::SecurityGroup', { SecurityGroupIngress: Match.absent() });
    template(defined(stacks.cluster)).hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 5432,
      ToPort: 5432,
      SourceSecurityGroupId: Match.anyValue(),
    });
  });

  it('runs the workloads on Fargate profiles of an EKS cluster', () => {
    const cluster = template(defined(stacks.cluster));
    cluster.hasResourceProperties('AWS::EKS::FargateProfile', {
      Selectors: [Match.objectLike({ Namespace: 'ccproxy' })],
    });
    // The default profile runs CoreDNS and the load balancer controller.
    cluster.hasResourceProperties('AWS::EKS::FargateProfile', {
      Selectors: Match.arrayWith([Match.objectLike({ Namespace: 'kube-system' })]),
    });
    cluster.hasResourceProperties('AWS::EKS::Cluster', { Version: '1.34' });
  });

  it('gives each component exactly the AWS actions it uses, on named resources only', () => {
    const { secrets } = stacks;
    const cluster = defined(stacks.cluster);
    const actions = (role: keyof typeof cluster.roles) =>
      statementsOf(cluster, cluster.roles[role])
        .flatMap((s) => [s.Action].flat())
        .sort();
    expect(actions('operator')).toEqual([
      'kms:Encrypt',
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
    ]);
    expect(actions('proxy')).toEqual(['kms:Decrypt', 'secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(actions('admin')).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    for (const role of ['operator', 'proxy', 'admin'] as const) {
      for (const statement of statementsOf(cluster, cluster.roles[role])) {
        expect(statement.Effect).toBe('Allow');
        expect(JSON.stringify(statement.Resource), `${role}: a wildcard resource`).not.toMatch(/"\*"/);
      }
    }
    // The KMS statements name the Bedrock key (an export of the secrets stack), nothing else.
    const kms = statementsOf(cluster, cluster.roles.proxy).find((s) => s.Action === 'kms:Decrypt');
    expect(JSON.stringify(kms?.Resource)).toContain(
      stacks.secrets.getLogicalId(secrets.bedrockKey.node.defaultChild as CfnRole),
    );
    // IRSA: web identity of the cluster's OIDC provider, conditioned on the service account.
    template(cluster).hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({ Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: Match.anyValue() } }),
        ],
      },
      Description: 'claude-code-proxy proxy (IRSA)',
    });
    const conditions = JSON.stringify(template(cluster).findResources('Custom::AWSCDKCfnJson'));
    for (const role of ['operator', 'proxy', 'admin'])
      expect(conditions).toContain(`:sub\\":\\"system:serviceaccount:ccproxy:ccproxy-${role}`);
    expect(conditions).toContain('sts.amazonaws.com');
  });

  it('deploys the cdk8s workloads, the CRDs and an ALB Ingress with the admin on its own host, by source IP', () => {
    const manifests = Object.values(
      template(defined(stacks.cluster)).findResources('Custom::AWSCDK-EKS-KubernetesResource'),
    ).map((r) => JSON.stringify((r as { Properties: { Manifest: unknown } }).Properties.Manifest));
    const all = manifests.join('\n');
    for (const name of ['ccproxy-operator', 'ccproxy-proxy', 'ccproxy-admin', 'accesskeys.ccproxy.io', 'aws-logging'])
      expect(all).toContain(name);
    expect(all).toContain('source-ip');
    expect(all).toContain('10.20.0.0/16');
    expect(all).toContain('proxy-admin.example.com');
    expect(all).toMatch(/path[^,]*:[^,]*\/ak\//);
    expect(all).toContain(context.certificateArn);
    expect(all).toContain('eks.amazonaws.com/role-arn');
    template(defined(stacks.cluster)).hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('alarms on failed answers, time to first byte, failovers, breakers, Bedrock tokens and the database', () => {
    const monitoring = template(stacks.monitoring);
    const names = Object.values(monitoring.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => (a as { Properties: { AlarmName: string } }).Properties.AlarmName)
      .sort();
    expect(names).toEqual([
      'ccproxy-bedrock-tokens-anomaly',
      'ccproxy-circuit-open',
      'ccproxy-database-acu',
      'ccproxy-database-cpu',
      'ccproxy-failed-requests',
      'ccproxy-failover-rate',
      'ccproxy-ttfb-p95',
    ]);
    monitoring.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'ccproxy-bedrock-tokens-anomaly',
      ComparisonOperator: 'GreaterThanUpperThreshold',
    });
    monitoring.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    monitoring.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [Match.anyValue()],
      TreatMissingData: 'notBreaching',
    });
    monitoring.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: context.alarmEmail });
  });

  it('watches only metrics the proxy really emits, with their real dimensions', () => {
    // What the proxy writes: every metric and dimension set, from a real CloudWatchEmf.
    const lines: string[] = [];
    const emf = new CloudWatchEmf((line) => lines.push(line));
    const tokens = { input: 1, output: 1, cacheRead: 1, cacheCreation: 1 };
    for (const provider of ['plan', 'bedrock', 'none'] as const)
      for (const errorType of [undefined, 'api_error', 'overloaded_error', 'rate_limit_error', 'timeout_error'])
        emf.observe({
          provider,
          latencyMs: 1,
          ttfbMs: 1,
          failed: true,
          failover: true,
          bedrockTokens: tokens,
          spendUsd: errorType === undefined ? null : 0.25,
          ...(errorType === undefined ? {} : { errorType }),
        });
    emf.flush(0);
    const emitted = new Set<string>();
    for (const line of lines.map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: EmfHead })) {
      const directive = line._aws.CloudWatchMetrics[0];
      for (const metric of directive?.Metrics ?? [])
        for (const dimensions of directive?.Dimensions ?? [])
          emitted.add(signature(metric.Name, Object.fromEntries(dimensions.map((d) => [d, String(line[d])]))));
    }
    // What the alarms and the dashboard read.
    const watched = new Set<string>();
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (node === null || typeof node !== 'object') return;
      const record = node as Record<string, unknown>;
      if (record.Namespace === cloudWatchNamespace && typeof record.MetricName === 'string') {
        const dims = (record.Dimensions as Array<{ Name: string; Value: string }> | undefined) ?? [];
        watched.add(signature(record.MetricName, Object.fromEntries(dims.map((d) => [d.Name, d.Value]))));
      }
      Object.values(record).forEach(visit);
    };
    const monitoring = template(stacks.monitoring).toJSON() as { Resources: Record<string, unknown> };
    visit(monitoring.Resources);
    const body = JSON.stringify(monitoring.Resources).match(/\[\\"ClaudeCodeProxy\\",[^\]]*\]/g) ?? [];
    for (const widgetMetric of body) {
      const [, name, ...pairs] = JSON.parse(widgetMetric.replaceAll('\\"', '"')) as string[];
      const dims: Record<string, string> = {};
      for (let i = 0; i + 1 < pairs.length; i += 2)
        if (typeof pairs[i + 1] === 'string') dims[pairs[i] ?? ''] = pairs[i + 1] ?? '';
      watched.add(signature(name ?? '', dims));
    }
    expect(watched.size).toBeGreaterThan(10);
    // Spend by provider is on the dashboard.
    for (const provider of ['plan', 'bedrock'])
      expect(watched).toContain(signature('SpendUSD', { Provider: provider }));
    expect([...watched].filter((w) => !emitted.has(w))).toEqual([]);
  });

  it('synthesizes templates that cfn-lint passes', async () => {
    const templates = (await readdir(outdir)).filter((f) => f.endsWith('.template.json')).map((f) => join(outdir, f));
    expect(templates).toHaveLength(5);
    const findings = await cfnLint(templates, { regions: [context.region] });
    // W3005 (a DependsOn that a GetAtt already implies) is emitted by aws-cdk-lib's own
    // custom-resource providers, not by our constructs; everything else must be clean.
    const ours = findings.filter(
      (f: CfnLintMatch) => !(f.Rule.Id === 'W3005' && /Provider|LogRetention/.test(String(f.Location.Path?.[1] ?? ''))),
    );
    expect(ours.map((f) => `${f.Rule.Id} ${f.Message} (${f.Filename})`)).toEqual([]);
  });

  it('cfn-lint really checks (a template with a wrong property is reported)', async () => {
    const bad = join(outdir, 'broken.json');
    await writeFile(
      bad,
      JSON.stringify({ Resources: { Bucket: { Type: 'AWS::S3::Bucket', Properties: { BucketNam: 'x' } } } }),
    );
    const findings = await cfnLint([bad], { regions: [context.region] });
    expect(findings.map((f) => f.Rule.Id)).toContain('E3002');
  });
});
