import type { Node } from 'constructs';

/** The three shapes of the estate, chosen with `-c profile=…` (README: "Profiles and cost"). */
export const profileNames = ['dev', 'existing-cluster', 'production'] as const;
export type Profile = (typeof profileNames)[number];

/** Who reaches the EKS API: only from inside the VPC, or also from the internet (`apiCidrs` narrows it). */
export const endpointAccessModes = ['private', 'public-and-private'] as const;
export type EndpointAccess = (typeof endpointAccessModes)[number];

/** What a deployment chooses, from CDK context (`cdk deploy -c domain=proxy.example.com ...`). */
export interface InfraSettings {
  readonly profile: Profile;
  readonly region: string;
  /** Account to deploy into; unset means the CLI's current credentials decide (environment-agnostic). */
  readonly account?: string;
  /** Prefix of stack and resource names, e.g. `ccproxy-prod`. */
  readonly prefix: string;
  /** Public host name of the proxy (ALB rule host, CCPROXY_PUBLIC_URL); empty means any host. */
  readonly domain: string;
  /** ACM certificate for `domain` on the ALB's HTTPS listener; empty with a hosted zone makes one. */
  readonly certificateArn: string;
  /**
   * A Route 53 zone holding `domain` (and `adminDomain`): the estate makes the ACM certificate
   * (DNS-validated in this zone) and the alias records to the ALB.
   */
  readonly hostedZoneId: string;
  readonly hostedZoneName: string;
  /** Host name of the admin UI and API on the ALB (its own host); empty keeps the admin off the ALB. */
  readonly adminDomain: string;
  /** CIDRs allowed to reach `adminDomain` on the ALB; required with it. */
  readonly adminCidrs: readonly string[];
  readonly vpcCidr: string;
  /** NAT gateways (one per AZ survives an AZ); `natInstance` swaps them for one t4g.nano instance. */
  readonly natGateways: number;
  readonly natInstance: boolean;
  /** Aurora readers beside the writer (each in another AZ: a failover target). */
  readonly dbReaders: number;
  readonly dbMinAcu: number;
  readonly dbMaxAcu: number;
  readonly backupRetentionDays: number;
  readonly logRetentionDays: number;
  /** Namespace of the workloads (and of the Fargate profile that runs them). */
  readonly namespace: string;
  readonly image: string;
  /** `sha256:…`: the image runs by digest (what was scanned), not by a tag that can move. */
  readonly imageDigest: string;
  /**
   * Bedrock model ids the BedrockKeys name (`anthropic.claude-…`, or an inference profile such as
   * `us.anthropic.claude-…`, or an application inference profile ARN): the proxy's role may invoke
   * exactly these, through the AWS identity path (BedrockKey spec.auth). Empty: no Bedrock IAM grant
   * (API-key BedrockKeys need none).
   */
  readonly bedrockModels: readonly string[];
  /** Regions a cross-region inference profile may route to (the foundation model is granted in each). */
  readonly bedrockRegions: readonly string[];
  /** An existing Secrets Manager secret with a default Anthropic key (CCPROXY_PLAN_API_KEY); optional. */
  readonly planApiKeySecretArn: string;
  /**
   * Admin single sign-on through a confidential OIDC client: the estate creates the secret
   * `<prefix>/admin-oidc-client-secret` with no value (the identity provider issues it: put it in
   * after `cdk deploy`), lets the admin's role read exactly it, and passes its id to the admin.
   */
  readonly adminOidcClientSecret: boolean;
  /** The EKS API endpoint: `private` (reach it from the VPC: VPN, bastion) or `public-and-private`. */
  readonly endpointAccess: EndpointAccess;
  /** With `public-and-private`: the CIDRs allowed to the public endpoint (empty: any address). */
  readonly apiCidrs: readonly string[];
  readonly alarmEmail: string;
  /** Proxy replicas (the HPA's floor when `proxyAutoscaling`); operator replicas (one leader). */
  readonly proxyReplicas: number;
  readonly proxyAutoscaling: boolean;
  readonly operatorReplicas: number;
  /** existing-cluster: the cluster's name, its VPC, private subnets and their AZs, and its IRSA provider. */
  readonly clusterName: string;
  readonly vpcId: string;
  readonly privateSubnetIds: readonly string[];
  readonly availabilityZones: readonly string[];
  readonly oidcProviderArn: string;
  /** existing-cluster: the security group of the cluster's pods (reaches Aurora on 5432). */
  readonly podSecurityGroupId: string;
  /** Join this ALB IngressGroup (one the company already runs) instead of making an ALB of our own. */
  readonly albGroup: string;
}

/** The seed's sizes, overridable key by key from context; a profile's own values come on top. */
export const defaultSettings: InfraSettings = {
  profile: 'production',
  region: 'ap-northeast-2',
  prefix: 'ccproxy',
  domain: '',
  certificateArn: '',
  hostedZoneId: '',
  hostedZoneName: '',
  adminDomain: '',
  adminCidrs: [],
  vpcCidr: '10.0.0.0/16',
  natGateways: 2,
  natInstance: false,
  dbReaders: 1,
  dbMinAcu: 0.5,
  dbMaxAcu: 4,
  backupRetentionDays: 7,
  logRetentionDays: 30,
  namespace: 'ccproxy',
  image: 'ghcr.io/claude-code-proxy/ccproxy',
  imageDigest: '',
  bedrockModels: [],
  bedrockRegions: [],
  planApiKeySecretArn: '',
  adminOidcClientSecret: false,
  endpointAccess: 'private',
  apiCidrs: [],
  alarmEmail: '',
  proxyReplicas: 2,
  proxyAutoscaling: true,
  operatorReplicas: 2,
  clusterName: '',
  vpcId: '',
  privateSubnetIds: [],
  availabilityZones: [],
  oidcProviderArn: '',
  podSecurityGroupId: '',
  albGroup: '',
};

/**
 * What each profile changes (docs/deployment.md, "Profiles and cost", gives each line's cost):
 * - production: a NAT gateway per AZ (the path to Bedrock, KMS and STS survives an AZ), an Aurora
 *   reader in the other AZ, two or more proxy replicas spread over AZs, two operators.
 * - dev: one NAT instance instead of gateways, no reader, one replica each, no autoscaling.
 * - existing-cluster: no network and no cluster (given by context); Aurora, KMS, secrets, IRSA
 *   roles and alarms, and the chart's values as a stack output for `helm install`.
 */
export const profiles: Record<Profile, Partial<InfraSettings>> = {
  production: {},
  dev: {
    natGateways: 1,
    natInstance: true,
    dbReaders: 0,
    dbMaxAcu: 2,
    proxyReplicas: 1,
    proxyAutoscaling: false,
    operatorReplicas: 1,
    logRetentionDays: 14,
    // A developer's kubectl reaches the API directly (narrow it with apiCidrs).
    endpointAccess: 'public-and-private',
  },
  'existing-cluster': { dbReaders: 0, operatorReplicas: 1 },
};
export function settingsFromContext(node: Node): InfraSettings {
  const profile = String(node.tryGetContext('profile') ?? defaultSettings.profile);
  if (!isProfile(profile)) throw new Error(`profile must be one of ${profileNames.join(', ')}; got ${profile}`);
  const base: InfraSettings = { ...defaultSettings, ...profiles[profile], profile };
  const read = <K extends keyof InfraSettings>(key: K): InfraSettings[K] => {
    const raw: unknown = node.tryGetContext(key);
    const fallback = base[key];
    if (raw === undefined) return fallback;
    // Context from `-c key=value` arrives as strings; lists as comma-separated values.
    if (typeof fallback === 'number') return Number(raw) as InfraSettings[K];
    if (typeof fallback === 'boolean') return (raw === true || raw === 'true') as InfraSettings[K];
    if (Array.isArray(fallback))
      return (Array.isArray(raw)
        ? raw.map(String)
        : String(raw).split(',').filter(Boolean)) as unknown as InfraSettings[K];
    return String(raw) as InfraSettings[K];
  };
  const account = node.tryGetContext('account') as string | undefined;
  const settings = Object.fromEntries(
    (Object.keys(defaultSettings) as Array<keyof InfraSettings>).map((key) => [key, read(key)]),
  ) as unknown as InfraSettings;
  if (profile === 'existing-cluster') requireExisting(settings);
  checkSettings(settings);
  return { ...settings, profile, ...(account === undefined ? {} : { account }) };
}

/** Values that would deploy something other than what was asked: refused, with every problem named. */
function checkSettings(settings: InfraSettings): void {
  const problems: string[] = [];
  if (!(endpointAccessModes as readonly string[]).includes(settings.endpointAccess))
    problems.push(`endpointAccess must be one of ${endpointAccessModes.join(', ')}; got ${settings.endpointAccess}`);
  if (settings.endpointAccess === 'private' && settings.apiCidrs.length > 0)
    problems.push('apiCidrs narrows the public endpoint; endpointAccess=private has none');
  if (settings.imageDigest !== '' && !/^sha256:[a-f0-9]{64}$/.test(settings.imageDigest))
    problems.push(`imageDigest must be sha256:<64 hex>; got ${settings.imageDigest}`);
  if ((settings.hostedZoneId === '') !== (settings.hostedZoneName === ''))
    problems.push('hostedZoneId and hostedZoneName go together');
  if (settings.hostedZoneId !== '' && settings.domain === '')
    problems.push('hostedZoneId needs domain (the name the certificate and the alias are for)');
  for (const model of settings.bedrockModels)
    if (model.includes('*')) problems.push(`bedrockModels lists ids, never wildcards; got ${model}`);
  if (problems.length > 0) throw new Error(`invalid settings:\n  ${problems.join('\n  ')}`);
}

function isProfile(value: string): value is Profile {
  return (profileNames as readonly string[]).includes(value);
}

function requireExisting(settings: InfraSettings): void {
  const missing: string[] = (['clusterName', 'vpcId', 'oidcProviderArn', 'podSecurityGroupId'] as const).filter(
    (key) => settings[key] === '',
  );
  if (settings.privateSubnetIds.length < 2) missing.push('privateSubnetIds');
  if (settings.availabilityZones.length !== settings.privateSubnetIds.length) missing.push('availabilityZones');
  if (missing.length > 0)
    throw new Error(`profile existing-cluster needs context ${missing.join(', ')} (the cluster it installs into)`);
}
