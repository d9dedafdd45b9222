import type { Node } from 'constructs';

/** What a deployment chooses, from CDK context (`cdk deploy -c domain=proxy.example.com ...`). */
export interface InfraSettings {
  readonly region: string;
  /** Account to deploy into; unset means the CLI's current credentials decide (environment-agnostic). */
  readonly account?: string;
  /** Prefix of stack and resource names, e.g. `ccproxy-prod`. */
  readonly prefix: string;
  /** Public host name of the proxy (ALB rule host, CCPROXY_PUBLIC_URL); empty means any host. */
  readonly domain: string;
  /** ACM certificate for `domain` on the ALB's HTTPS listener. */
  readonly certificateArn: string;
  /** Host name of the admin UI and API on the ALB (its own host); empty keeps the admin off the ALB. */
  readonly adminDomain: string;
  /** CIDRs allowed to reach `adminDomain` on the ALB; required with it. */
  readonly adminCidrs: readonly string[];
  readonly vpcCidr: string;
  readonly natGateways: number;
  readonly dbMinAcu: number;
  readonly dbMaxAcu: number;
  readonly backupRetentionDays: number;
  readonly logRetentionDays: number;
  /** Namespace of the workloads (and of the Fargate profile that runs them). */
  readonly namespace: string;
  readonly image: string;
  readonly alarmEmail: string;
}

/** The seed's sizes, overridable key by key from context. */
export const defaultSettings: InfraSettings = {
  region: 'ap-northeast-2',
  prefix: 'ccproxy',
  domain: '',
  certificateArn: '',
  adminDomain: '',
  adminCidrs: [],
  vpcCidr: '10.0.0.0/16',
  natGateways: 1,
  dbMinAcu: 0.5,
  dbMaxAcu: 4,
  backupRetentionDays: 7,
  logRetentionDays: 30,
  namespace: 'ccproxy',
  image: 'ghcr.io/claude-code-proxy/ccproxy',
  alarmEmail: '',
};

export function settingsFromContext(node: Node): InfraSettings {
  const read = <K extends keyof InfraSettings>(key: K): InfraSettings[K] => {
    const raw: unknown = node.tryGetContext(key);
    if (raw === undefined) return defaultSettings[key];
    const fallback = defaultSettings[key];
    // Context from `-c key=value` arrives as strings; lists as comma-separated values.
    if (typeof fallback === 'number') return Number(raw) as InfraSettings[K];
    if (Array.isArray(fallback))
      return (Array.isArray(raw)
        ? raw.map(String)
        : String(raw).split(',').filter(Boolean)) as unknown as InfraSettings[K];
    return String(raw) as InfraSettings[K];
  };
  const account = node.tryGetContext('account') as string | undefined;
  return {
    ...(account === undefined ? {} : { account }),
    region: read('region'),
    prefix: read('prefix'),
    domain: read('domain'),
    certificateArn: read('certificateArn'),
    adminDomain: read('adminDomain'),
    adminCidrs: read('adminCidrs'),
    vpcCidr: read('vpcCidr'),
    natGateways: read('natGateways'),
    dbMinAcu: read('dbMinAcu'),
    dbMaxAcu: read('dbMaxAcu'),
    backupRetentionDays: read('backupRetentionDays'),
    logRetentionDays: read('logRetentionDays'),
    namespace: read('namespace'),
    image: read('image'),
    alarmEmail: read('alarmEmail'),
  };
}
