import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '@ccproxy/cdk8s';
import { buildInfra, type InfraStacks } from '../src/app.ts';
import { release } from '../src/stacks/workload-access.ts';

/** Production with everything this file checks turned on; dev with a CIDR-restricted API. */
const zone = { hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' };
const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
const production = {
  region: 'us-east-1',
  domain: 'proxy.example.com',
  adminDomain: 'proxy-admin.example.com',
  adminCidrs: '10.20.0.0/16',
  ...zone,
  imageDigest: digest,
  bedrockModels: 'anthropic.claude-sonnet-4-5-20250929-v1:0,us.anthropic.claude-haiku-4-5-20251001-v1:0',
  bedrockRegions: 'us-east-1,us-east-2,us-west-2',
};

const apps: Record<string, { stacks: InfraStacks; outdir: string }> = {};
async function synth(name: string, context: Record<string, unknown>) {
  const outdir = await mkdtemp(join(tmpdir(), `ccproxy-hardening-${name}-`));
  const app = new App({ outdir, context });
  apps[name] = { stacks: buildInfra(app), outdir };
  app.synth();
}
const get = (name: string) => apps[name] ?? (undefined as never);
const cluster = (name: string) => get(name).stacks.cluster ?? (undefined as never);
const template = (stack: Stack) => Template.fromStack(stack);

beforeAll(async () => {
  await synth('production', production);
  await synth('certificate', { ...production, certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/x' });
  await synth('dev', { profile: 'dev', region: 'us-east-1', apiCidrs: '198.51.100.0/24' });
  await synth('no-models', { region: 'us-east-1' });
  await synth('sso', { ...production, adminOidcClientSecret: 'true' });
}, 10 * 60_000);
afterAll(async () => {
  for (const { outdir } of Object.values(apps)) await rm(outdir, { recursive: true, force: true });
});

/** The statements of the inline policies of one of the cluster stack's IRSA roles. */
function statementsOf(name: string, component: 'operator' | 'proxy' | 'admin') {
  const stack = cluster(name);
  const id = stack.getLogicalId(stack.roles[component].node.defaultChild as CfnRole);
  return Object.values(template(stack).findResources('AWS::IAM::Policy'))
    .map(
      (p) =>
        (p as { Properties: { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: unknown[] } } }).Properties,
    )
    .filter((p) => p.Roles.some((r) => r.Ref === id))
    .flatMap((p) => p.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>);
}

/** The workloads exactly as the cluster stack applies them (its cdk8s chart, from its values). */
function workloads(name: string) {
  const { chart } = buildApp({ namespace: 'ccproxy', releaseName: release, overrides: cluster(name).chartValues });
  return chart.toJson() as Array<{
    kind: string;
    metadata: { name: string; annotations?: Record<string, string> };
    spec?: { template?: { spec: { containers: Array<Record<string, unknown>> } } };
  }>;
}
const containers = (name: string) =>
  workloads(name)
    .filter((o) => o.kind === 'Deployment')
    .map((d) => ({ name: d.metadata.name, container: d.spec?.template?.spec.containers[0] ?? {} }));

describe('secrets end to end', () => {
  it('the installed workloads read every secret by Secrets Manager id: no Kubernetes Secret to make by hand', () => {
    const made = [
      ...Object.values(template(get('production').stacks.secrets).findResources('AWS::SecretsManager::Secret')),
      ...Object.values(template(get('production').stacks.database).findResources('AWS::SecretsManager::Secret')),
    ].map((s) => (s as { Properties: { Name: string } }).Properties.Name);
    const wanted: Record<string, string[]> = {
      'ccproxy-operator': ['CCPROXY_DATABASE_SECRET_ID', 'CCPROXY_KEY_HASHER_SECRET_ID'],
      'ccproxy-proxy': ['CCPROXY_DATABASE_SECRET_ID', 'CCPROXY_KEY_HASHER_SECRET_ID'],
      'ccproxy-admin': [
        'CCPROXY_DATABASE_SECRET_ID',
        'CCPROXY_ADMIN_PASSWORD_SECRET_ID',
        'CCPROXY_ADMIN_SESSION_SECRET_ID',
      ],
    };
    for (const { name, container } of containers('production')) {
      const env = container.env as Array<{ name: string; value?: string; valueFrom?: unknown }>;
      expect(
        env.filter((e) => e.valueFrom !== undefined && !JSON.stringify(e.valueFrom).includes('fieldRef')),
        name,
      ).toEqual([]);
      const ids = env.filter((e) => e.name.endsWith('_SECRET_ID'));
      expect(ids.map((e) => e.name).sort(), name).toEqual([...(wanted[name] ?? [])].sort());
      // Each id names a secret the estate generates, and the component's role may read exactly those.
      for (const id of ids) expect(made, `${name} ${id.name}`).toContain(id.value);
      expect(env.find((e) => e.name === 'CCPROXY_KMS_KEY_ID')?.value ?? 'alias/ccproxy/bedrock-keys').toBe(
        'alias/ccproxy/bedrock-keys',
      );
    }
    const readable = (component: 'operator' | 'proxy' | 'admin') =>
      JSON.stringify(
        statementsOf('production', component).filter((s) =>
          [s.Action].flat().includes('secretsmanager:GetSecretValue'),
        ),
      );
    for (const [component, logicalIds] of [
      ['operator', ['KeyHasherSecret', 'AuroraSecret']],
      ['proxy', ['KeyHasherSecret', 'AuroraSecret']],
      ['admin', ['AdminPassword', 'AdminSessionSecret', 'AuroraSecret']],
    ] as const) {
      for (const logicalId of logicalIds) expect(readable(component), component).toContain(logicalId);
      expect((readable(component).match(/ExportsOutputRef/g) ?? []).length, component).toBe(logicalIds.length);
    }
  });

  it('with adminOidcClientSecret: an empty secret for the IdP’s client secret, its id on the admin, readable by the admin alone', () => {
    const secrets = Object.values(template(get('sso').stacks.secrets).findResources('AWS::SecretsManager::Secret')).map(
      (s) => (s as { Properties: Record<string, unknown> }).Properties,
    );
    const oidc = secrets.find((p) => p.Name === 'ccproxy/admin-oidc-client-secret');
    // No value at all (not a generated placeholder): the identity provider issues it.
    expect(oidc).toBeDefined();
    expect(oidc).not.toHaveProperty('GenerateSecretString');
    expect(oidc).not.toHaveProperty('SecretString');
    const admin = containers('sso').find((c) => c.name === 'ccproxy-admin')?.container;
    const env = (admin?.env ?? []) as Array<{ name: string; value?: string; valueFrom?: unknown }>;
    expect(env.find((e) => e.name === 'CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID')?.value).toBe(
      'ccproxy/admin-oidc-client-secret',
    );
    expect(env.filter((e) => e.name === 'CCPROXY_ADMIN_OIDC_CLIENT_SECRET')).toEqual([]);
    const reads = (component: 'operator' | 'proxy' | 'admin') =>
      JSON.stringify(
        statementsOf('sso', component).filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue')),
      );
    expect(reads('admin')).toContain('AdminOidcClientSecret');
    expect(reads('proxy')).not.toContain('AdminOidcClientSecret');
    expect(reads('operator')).not.toContain('AdminOidcClientSecret');
    // Without the context key nothing of it exists.
    expect(JSON.stringify(template(get('production').stacks.secrets).toJSON())).not.toContain('oidc');
  });

  it('rotates the database password monthly; the other secrets are generated and retained', () => {
    const database = template(get('production').stacks.database);
    database.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
  });
});

describe('least privilege', () => {
  it('grants the proxy exactly the Bedrock models listed in context, never a wildcard', () => {
    const bedrock = statementsOf('production', 'proxy').filter((s) => String(s.Action).includes('bedrock'));
    expect(bedrock).toHaveLength(1);
    expect([bedrock[0]?.Action].flat().sort()).toEqual([
      'bedrock:InvokeModel',
      'bedrock:InvokeModelWithResponseStream',
    ]);
    const arns = get('production').stacks.cluster?.resolve(bedrock[0]?.Resource) as unknown[];
    const text = arns.map((a) => JSON.stringify(a));
    expect(text).toHaveLength(5);
    expect(text.join('\n')).not.toContain('*');
    expect(text.join('\n')).toContain('us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(text.join('\n')).toContain(':inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0');
    for (const region of ['us-east-1', 'us-east-2', 'us-west-2'])
      expect(text.join('\n')).toContain(`${region}::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0`);
    // No models listed: no Bedrock grant at all (API-key BedrockKeys need none).
    expect(statementsOf('no-models', 'proxy').filter((s) => String(s.Action).includes('bedrock'))).toEqual([]);
    for (const component of ['operator', 'admin'] as const)
      expect(JSON.stringify(statementsOf('production', component))).not.toContain('bedrock');
  });

  it('lets the operator read Secrets only in the namespace it serves (a Role, never a ClusterRole)', () => {
    const objects = workloads('production') as unknown as Array<{
      kind: string;
      metadata: { name: string; namespace?: string };
      rules?: Array<{ resources: string[] }>;
    }>;
    const grantsSecrets = (o: (typeof objects)[number]) => (o.rules ?? []).some((r) => r.resources.includes('secrets'));
    expect(objects.filter((o) => o.kind === 'ClusterRole' && grantsSecrets(o))).toEqual([]);
    const roles = objects.filter((o) => o.kind === 'Role' && grantsSecrets(o));
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort()).toEqual([
      'ccproxy/ccproxy-admin',
      'ccproxy/ccproxy-operator',
      // The admission webhook's TLS Secret, beside the Lease: read by its name only, and created.
      'ccproxy/ccproxy-operator-webhook-tls',
    ]);
    // Both processes are told to stay in it (they would list the cluster and be refused otherwise).
    for (const { name, container } of containers('production'))
      if (name !== 'ccproxy-proxy')
        expect(
          (container.env as Array<{ name: string; value?: string }>).find((e) => e.name === 'CCPROXY_WATCH_NAMESPACE')
            ?.value,
          name,
        ).toBe('ccproxy');
  });

  it('keeps the EKS API private in production, and CIDR-restricted when asked', () => {
    template(cluster('production')).hasResourceProperties('AWS::EKS::Cluster', {
      ResourcesVpcConfig: Match.objectLike({ EndpointPrivateAccess: true, EndpointPublicAccess: false }),
    });
    template(cluster('dev')).hasResourceProperties('AWS::EKS::Cluster', {
      ResourcesVpcConfig: Match.objectLike({
        EndpointPrivateAccess: true,
        EndpointPublicAccess: true,
        PublicAccessCidrs: ['198.51.100.0/24'],
      }),
    });
    expect(() => buildInfra(new App({ context: { apiCidrs: '198.51.100.0/24' } }))).toThrow(
      /apiCidrs narrows the public endpoint/,
    );
    expect(() => buildInfra(new App({ context: { endpointAccess: 'public' } }))).toThrow(
      /endpointAccess must be one of/,
    );
    expect(() => buildInfra(new App({ context: { bedrockModels: 'anthropic.*' } }))).toThrow(/never wildcards/);
  });

  it("puts the release's pods in their own security group, with egress only where they call", () => {
    const stack = cluster('production');
    const t = template(stack);
    const sg = stack.resolve(stack.podSecurityGroup.securityGroupId) as unknown;
    const manifests = Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).map((r) =>
      JSON.stringify((r as { Properties: { Manifest: unknown } }).Properties.Manifest),
    );
    const policy = manifests.find((m) => m.includes('SecurityGroupPolicy')) ?? '';
    expect(policy).toContain(`app.kubernetes.io/instance\\":\\"${release}`);
    expect(policy).toContain(JSON.stringify((sg as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]));
    const group = Object.values(t.findResources('AWS::EC2::SecurityGroup')).find((g) =>
      String((g as { Properties: { GroupDescription: string } }).Properties.GroupDescription).includes(
        'security groups for pods',
      ),
    ) as { Properties: { SecurityGroupEgress: Array<{ IpProtocol: string; FromPort: number; CidrIp?: string }> } };
    const egress = group.Properties.SecurityGroupEgress.map((e) => `${e.IpProtocol}/${e.FromPort}/${e.CidrIp ?? 'sg'}`);
    // HTTPS anywhere (Anthropic has no fixed addresses); DNS to CoreDNS and Postgres to Aurora, by group.
    expect(egress).toEqual(['tcp/443/0.0.0.0/0', 'udp/53/sg', 'tcp/53/sg', 'tcp/5432/sg']);
  });
});

describe('operations', () => {
  it('Aurora: IAM authentication, Performance Insights, log retention', () => {
    const database = template(get('production').stacks.database);
    database.hasResourceProperties('AWS::RDS::DBCluster', { EnableIAMDatabaseAuthentication: true });
    // The free tier: 7 days.
    database.hasResourceProperties('AWS::RDS::DBCluster', {
      PerformanceInsightsEnabled: true,
      PerformanceInsightsRetentionPeriod: 7,
    });
    database.hasResourceProperties('Custom::LogRetention', { RetentionInDays: 30 });
  });

  it('gives every log group it makes a retention, the control plane’s included', async () => {
    for (const name of ['production', 'dev']) {
      const { outdir } = get(name);
      let groups = 0;
      for (const file of (await readdir(outdir)).filter((f) => f.endsWith('.template.json'))) {
        const resources = (JSON.parse(await readFile(join(outdir, file), 'utf8')) as { Resources: object }).Resources;
        for (const [id, resource] of Object.entries(resources) as Array<
          [string, { Type: string; Properties?: { RetentionInDays?: number } }]
        >) {
          if (resource.Type !== 'AWS::Logs::LogGroup') continue;
          groups += 1;
          expect(resource.Properties?.RetentionInDays, `${name} ${file} ${id}`).toBeGreaterThan(0);
        }
      }
      expect(groups, name).toBeGreaterThanOrEqual(3);
    }
    template(cluster('production')).hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/eks/ccproxy/cluster',
      RetentionInDays: 30,
    });
  });

  it('runs the image by digest, and every Fargate pod with requests equal to limits', () => {
    for (const { name, container } of containers('production')) {
      expect(container.image, name).toBe(`ghcr.io/claude-code-proxy/ccproxy@${digest}`);
      const resources = container.resources as { requests: object; limits: object };
      expect(resources.limits, name).toEqual(resources.requests);
      expect(Object.keys(resources.requests).sort(), name).toEqual(['cpu', 'memory']);
    }
    expect(() => buildInfra(new App({ context: { imageDigest: 'latest' } }))).toThrow(/imageDigest must be sha256/);
  });
});

describe('DNS and TLS', () => {
  it('makes a DNS-validated certificate and alias records to the ALB from a hosted zone', () => {
    const t = template(cluster('production'));
    t.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'proxy.example.com',
      SubjectAlternativeNames: ['proxy-admin.example.com'],
      DomainValidationOptions: Match.arrayWith([
        Match.objectLike({ DomainName: 'proxy.example.com', HostedZoneId: zone.hostedZoneId }),
      ]),
      ValidationMethod: 'DNS',
    });
    for (const host of ['proxy.example.com', 'proxy-admin.example.com'])
      t.hasResourceProperties('AWS::Route53::RecordSet', {
        HostedZoneId: zone.hostedZoneId,
        Name: host,
        Type: 'A',
        AliasTarget: Match.objectLike({ DNSName: Match.anyValue(), HostedZoneId: Match.anyValue() }),
      });
    // The Ingress names its ALB (the alias looks it up by that name) and uses the new certificate.
    const ingress = workloads('production').find((o) => o.kind === 'Ingress');
    expect(ingress?.metadata.annotations?.['alb.ingress.kubernetes.io/load-balancer-name']).toBe('ccproxy-alb');
    const certificate = cluster('production').resolve(
      ingress?.metadata.annotations?.['alb.ingress.kubernetes.io/certificate-arn'],
    );
    expect(JSON.stringify(certificate)).toContain('Certificate');
  });

  it('keeps an existing certificate ARN as the option: then no certificate is made', () => {
    const t = template(cluster('certificate'));
    t.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    const ingress = workloads('certificate').find((o) => o.kind === 'Ingress');
    expect(ingress?.metadata.annotations?.['alb.ingress.kubernetes.io/certificate-arn']).toBe(
      'arn:aws:acm:us-east-1:123456789012:certificate/x',
    );
    // Without a zone: no certificate and no alias (the DNS stays the team's).
    template(cluster('no-models')).resourceCountIs('AWS::Route53::RecordSet', 0);
    expect(() => buildInfra(new App({ context: { hostedZoneId: 'Z1' } }))).toThrow(
      /hostedZoneId and hostedZoneName go together/,
    );
  });
});
