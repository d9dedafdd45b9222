import { CfnJson } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ValuesOverrides } from '@ccproxy/cdk8s';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

export const release = 'ccproxy';
export type Component = 'operator' | 'proxy' | 'admin';

export interface AccessProps {
  readonly bedrockKey: kms.IKey;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly hasherSecret: secretsmanager.ISecret;
  readonly adminSecret: secretsmanager.ISecret;
  readonly planApiKeySecret: secretsmanager.ISecret;
}

/** One IRSA role per component, with exactly the AWS actions that component uses. */
export function componentRoles(
  scope: Construct,
  provider: iam.IOpenIdConnectProvider,
  namespace: string,
  props: AccessProps,
): Record<Component, iam.Role> {
  const role = (component: Component, statements: iam.PolicyStatement[]) =>
    irsaRole(scope, provider, component, namespace, statements);
  return {
    operator: role('operator', [
      // Wraps each Bedrock API key's fresh data key (EncryptCommand with an encryption context).
      new iam.PolicyStatement({ actions: ['kms:Encrypt'], resources: [props.bedrockKey.keyArn] }),
      secretsRead([props.hasherSecret, props.databaseSecret]),
    ]),
    proxy: role('proxy', [
      // Unwraps data keys to use a Bedrock API key; never Encrypt.
      new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [props.bedrockKey.keyArn] }),
      secretsRead([props.hasherSecret, props.databaseSecret, props.planApiKeySecret]),
    ]),
    admin: role('admin', [secretsRead([props.adminSecret, props.databaseSecret])]),
  };
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

/** The chart's values for this estate: the same for the CDK-installed chart and a `helm install`. */
export function chartOverrides(
  settings: InfraSettings,
  region: string,
  roles: Record<Component, { readonly roleArn: string }>,
): ValuesOverrides {
  const irsa = (component: Component) => ({
    serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': roles[component].roleArn } },
  });
  return {
    image: { repository: settings.image },
    aws: { region },
    ...(settings.domain === '' ? {} : { publicUrl: `https://${settings.domain}` }),
    operator: { ...irsa('operator'), replicas: settings.operatorReplicas },
    proxy: {
      ...irsa('proxy'),
      config: { CCPROXY_CLOUDWATCH_EMF: true },
      replicas: settings.proxyReplicas,
      autoscaling: { enabled: settings.proxyAutoscaling, minReplicas: settings.proxyReplicas },
      // One replica cannot keep one available through a voluntary disruption.
      podDisruptionBudget: { minAvailable: settings.proxyReplicas > 1 ? 1 : 0 },
    },
    admin: irsa('admin'),
    // One ALB: /ak/ on `domain` to the proxy; the admin on `adminDomain`, only from adminCidrs.
    ingress: {
      enabled: true,
      host: settings.domain,
      adminHost: settings.adminDomain,
      adminSourceRanges: settings.adminCidrs,
      annotations: {
        'alb.ingress.kubernetes.io/ssl-policy': 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        ...(settings.albGroup === '' ? {} : { 'alb.ingress.kubernetes.io/group.name': settings.albGroup }),
        ...(settings.certificateArn === ''
          ? {}
          : { 'alb.ingress.kubernetes.io/certificate-arn': settings.certificateArn }),
      },
    },
  };
}
