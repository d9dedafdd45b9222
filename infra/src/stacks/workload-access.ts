import { Aws, CfnJson, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ValuesOverrides } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';
import { albName } from './dns.ts';
import { runtimeSecretNames } from './secrets.ts';

export const release = 'ccproxy';
export type Component = 'operator' | 'proxy' | 'admin';

/** What the pods read at start (by id, from Secrets Manager) and the key that wraps Bedrock keys. */
export interface RuntimeSecrets {
  readonly bedrockKey: kms.IKey;
  readonly hasherSecret: secretsmanager.ISecret;
  readonly adminPasswordSecret: secretsmanager.ISecret;
  readonly adminSessionSecret: secretsmanager.ISecret;
  readonly planApiKeySecret?: secretsmanager.ISecret | undefined;
  readonly adminOidcClientSecret?: secretsmanager.ISecret | undefined;
}

export interface AccessProps extends RuntimeSecrets {
  readonly databaseSecret: secretsmanager.ISecret;
}

/** One IRSA role per component, with exactly the AWS actions that component uses. */
export function componentRoles(
  scope: Construct,
  provider: iam.IOpenIdConnectProvider,
  settings: InfraSettings,
  props: AccessProps,
): Record<Component, iam.Role> {
  const role = (component: Component, statements: iam.PolicyStatement[]) =>
    irsaRole(scope, provider, component, settings.namespace, statements);
  const models = bedrockModelArns(settings, Stack.of(scope).region);
  return {
    operator: role('operator', [
      // Wraps each Bedrock API key's fresh data key (EncryptCommand with an encryption context).
      new iam.PolicyStatement({ actions: ['kms:Encrypt'], resources: [props.bedrockKey.keyArn] }),
      secretsRead([props.hasherSecret, props.databaseSecret]),
    ]),
    proxy: role('proxy', [
      // Unwraps data keys to use a Bedrock API key; never Encrypt.
      new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [props.bedrockKey.keyArn] }),
      secretsRead([props.hasherSecret, props.databaseSecret, ...optional(props.planApiKeySecret)]),
      // BedrockKeys with spec.auth AwsIdentity sign with this role: exactly the models they name.
      ...(models.length === 0
        ? []
        : [
            new iam.PolicyStatement({
              actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
              resources: models,
            }),
          ]),
    ]),
    admin: role('admin', [
      secretsRead([
        props.adminPasswordSecret,
        props.adminSessionSecret,
        props.databaseSecret,
        ...optional(props.adminOidcClientSecret),
      ]),
    ]),
  };
}

const optional = <T>(value: T | undefined): T[] => (value === undefined ? [] : [value]);

/** A cross-region inference profile id: a geography prefix before the model id. */
const inferenceProfile = /^(us|us-gov|eu|apac|jp|au|ca|global)\.(.+)$/;

/**
 * `bedrockModels` as ARNs, never a wildcard: a model id → its foundation-model ARN in this region;
 * an inference profile id → the profile's ARN and the foundation model in each region it may route
 * to (`bedrockRegions`, default this one); an ARN (an application inference profile) as given.
 */
export function bedrockModelArns(settings: InfraSettings, region: string): string[] {
  const regions = settings.bedrockRegions.length === 0 ? [region] : settings.bedrockRegions;
  const foundation = (r: string, id: string) => `arn:${Aws.PARTITION}:bedrock:${r}::foundation-model/${id}`;
  const arns = settings.bedrockModels.flatMap((model) => {
    if (model.startsWith('arn:')) return [model];
    const profile = inferenceProfile.exec(model);
    if (profile === null) return [foundation(region, model)];
    return [
      `arn:${Aws.PARTITION}:bedrock:${region}:${Aws.ACCOUNT_ID}:inference-profile/${model}`,
      ...regions.map((r) => foundation(r, profile[2] ?? '')),
    ];
  });
  return [...new Set(arns)];
}

/** A role only `system:serviceaccount:<ns>:<release>-<component>` of this cluster can assume (IRSA). */
function irsaRole(
  scope: Construct,
  provider: iam.IOpenIdConnectProvider,
  component: Component,
  namespace: string,
  statements: iam.PolicyStatement[],
): iam.Role {
  // The issuer is a deploy-time value, and condition keys must be strings: CfnJson resolves both.
  const conditions = new CfnJson(scope, `${component}IrsaConditions`, {
    value: {
      [`${provider.openIdConnectProviderIssuer}:sub`]: `system:serviceaccount:${namespace}:${release}-${component}`,
      [`${provider.openIdConnectProviderIssuer}:aud`]: 'sts.amazonaws.com',
    },
  });
  const role = new iam.Role(scope, `${component}Role`, {
    description: `claude-code-proxy ${component} (IRSA)`,
    assumedBy: new iam.OpenIdConnectPrincipal(provider).withConditions({ StringEquals: conditions }),
  });
  for (const statement of statements) role.addToPolicy(statement);
  return role;
}

function secretsRead(secrets: secretsmanager.ISecret[]): iam.PolicyStatement {
  // Runtime secrets by ARN; DescribeSecret lets a process notice a rotation without reading the value.
  return new iam.PolicyStatement({
    actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
    resources: secrets.map((s) => s.secretArn),
  });
}

/**
 * Requests = limits: Fargate bills (and sizes the pod's VM by) the requests, so a limit above them
 * is memory the pod may reach for and not have; equal, the pod is Guaranteed (evicted last). CPU
 * is Fargate's smallest size (0.25 vCPU), which every pod gets anyway.
 */
function fargateResources(settings: InfraSettings) {
  // existing-cluster: the company's nodes (often EC2), priced and sized by the chart's requests.
  return (cpu: string, memory: string) =>
    settings.profile === 'existing-cluster'
      ? {}
      : { resources: { requests: { cpu, memory }, limits: { cpu, memory } } };
}

/**
 * The chart's values for this estate: the same for the CDK-installed chart and a `helm install`.
 * Every secret goes by its Secrets Manager id (the processes read them at start): the install
 * needs no Kubernetes Secret.
 */
export function chartOverrides(
  settings: InfraSettings,
  region: string,
  roles: Record<Component, { readonly roleArn: string }>,
  certificateArn = settings.certificateArn,
): ValuesOverrides {
  const names = runtimeSecretNames(settings.prefix);
  const guaranteed = fargateResources(settings);
  const irsa = (component: Component) => ({
    serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': roles[component].roleArn } },
  });
  return {
    image: { repository: settings.image, ...(settings.imageDigest === '' ? {} : { digest: settings.imageDigest }) },
    aws: {
      region,
      kmsKeyId: names.bedrockKeyAlias,
      secretIds: {
        database: names.database,
        keyHasher: names.keyHasher,
        adminPassword: names.adminPassword,
        adminSessionSecret: names.adminSessionSecret,
        ...(settings.adminOidcClientSecret ? { adminOidcClientSecret: names.adminOidcClientSecret } : {}),
        ...(settings.planApiKeySecretArn === '' ? {} : { planApiKey: settings.planApiKeySecretArn }),
      },
    },
    ...(settings.domain === '' ? {} : { publicUrl: `https://${settings.domain}` }),
    operator: {
      ...irsa('operator'),
      ...guaranteed('250m', '256Mi'),
      replicas: settings.operatorReplicas,
      // The operator (and the admin) serve the release namespace only: their RBAC is a Role there, so
      // the operator reads the Secrets of that namespace and no other — and with every runtime
      // secret in Secrets Manager, the only Secrets there are the ones its resources name.
      watchNamespace: settings.namespace,
    },
    proxy: {
      ...irsa('proxy'),
      ...guaranteed('250m', '512Mi'),
      config: { CCPROXY_CLOUDWATCH_EMF: true },
      replicas: settings.proxyReplicas,
      autoscaling: { enabled: settings.proxyAutoscaling, minReplicas: settings.proxyReplicas },
      // One replica cannot keep one available through a voluntary disruption.
      podDisruptionBudget: { minAvailable: settings.proxyReplicas > 1 ? 1 : 0 },
    },
    admin: { ...irsa('admin'), ...guaranteed('250m', '256Mi') },
    // One ALB: /ak/ on `domain` to the proxy; the admin on `adminDomain`, only from adminCidrs.
    ingress: {
      enabled: true,
      host: settings.domain,
      adminHost: settings.adminDomain,
      adminSourceRanges: settings.adminCidrs,
      annotations: {
        'alb.ingress.kubernetes.io/ssl-policy': 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        // A shared group keeps the company's ALB; our own gets a name the DNS alias can look up.
        ...(settings.albGroup === ''
          ? { 'alb.ingress.kubernetes.io/load-balancer-name': albName(settings) }
          : { 'alb.ingress.kubernetes.io/group.name': settings.albGroup }),
        ...(certificateArn === '' ? {} : { 'alb.ingress.kubernetes.io/certificate-arn': certificateArn }),
      },
    },
  };
}
