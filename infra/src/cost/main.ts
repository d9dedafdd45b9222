import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildInfra } from '../app.ts';
import { profileNames, type Profile } from '../settings.ts';
import { estateCost } from './estate-cost.ts';
import { total, type CostLine } from './estimate.ts';
import { prices } from './prices.ts';

/** Context that stands for a company's own cluster in the existing-cluster estimate. */
export const sampleExistingCluster = {
  clusterName: 'platform',
  vpcId: 'vpc-0123456789abcdef0',
  privateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
  availabilityZones: 'us-east-1a,us-east-1b',
  oidcProviderArn:
    'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE',
  podSecurityGroupId: 'sg-0123456789abcdef0',
  albGroup: 'platform-shared',
};

/** Synthesizes `profile` (in a scratch folder) and prices it. */
export async function profileCost(profile: Profile, context: Record<string, unknown> = {}): Promise<CostLine[]> {
  const outdir = await mkdtemp(join(tmpdir(), `ccproxy-cost-${profile}-`));
  try {
    const app = new App({
      outdir,
      context: {
        profile,
        region: prices.region,
        ...(profile === 'existing-cluster' ? sampleExistingCluster : {}),
        ...context,
      },
    });
    return estateCost(app, buildInfra(app));
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

function print(profile: Profile, lines: readonly CostLine[]): void {
  console.log(`\n${profile}: $${total(lines).toFixed(2)} a month`);
  for (const line of lines)
    console.log(
      `  ${line.monthly.toFixed(2).padStart(8)}  ${String(line.count).padStart(2)} × ${line.item}  [${line.from}]`,
    );
}

// `npm run cost`: every profile, priced at the dated list prices in prices.ts.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`claude-code-proxy estate, monthly estimate at ${prices.region} list prices of ${prices.date}`);
  for (const profile of profileNames) print(profile, await profileCost(profile));
}
