import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInfra } from '../src/app.ts';
import { sampleExistingCluster } from '../src/cost/main.ts';
import { profileNames } from '../src/settings.ts';

interface Report {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: Array<{ ruleName: string; severity: string; violatingConstructs: Array<{ constructPath: string }> }>;
  }>;
}

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Synthesizes with cdk-nag's AwsSolutions pack as the CDK app does (main.ts) and reads its report. */
async function nag(build: (app: App) => void): Promise<{ findings: string[]; threw: boolean }> {
  const outdir = await mkdtemp(join(tmpdir(), 'ccproxy-nag-'));
  dirs.push(outdir);
  const app = new App({ outdir, context: {} });
  build(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let threw = false;
  try {
    app.synth();
  } catch {
    threw = true;
  }
  const report = JSON.parse(await readFile(join(outdir, 'validation-report.json'), 'utf8')) as Report;
  const findings = report.pluginReports
    .filter((r) => r.pluginName === 'AwsSolutions')
    .flatMap((r) => r.violations)
    .flatMap((v) => v.violatingConstructs.map((c) => `${v.severity} ${v.ruleName} ${c.constructPath}`));
  return { findings, threw };
}

describe('cdk-nag AwsSolutions', () => {
  it.each(profileNames)(
    'finds nothing unacknowledged in the %s profile',
    async (profile) => {
      const context = {
        profile,
        domain: 'proxy.example.com',
        adminDomain: 'proxy-admin.example.com',
        adminCidrs: '10.20.0.0/16',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
        hostedZoneName: 'example.com',
        bedrockModels: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        ...(profile === 'existing-cluster' ? sampleExistingCluster : {}),
      };
      const { findings, threw } = await nag((app) => {
        for (const [key, value] of Object.entries(context)) app.node.setContext(key, value);
        buildInfra(app);
      });
      expect(findings).toEqual([]);
      expect(threw).toBe(false);
    },
    120_000,
  );

  it('really checks (an unencrypted queue without SSL enforcement is an error)', async () => {
    const { findings, threw } = await nag((app) => new sqs.Queue(new Stack(app, 'probe'), 'Queue'));
    expect(findings.some((f) => f.startsWith('error AwsSolutions-SQS4'))).toBe(true);
    expect(threw).toBe(true);
  });
});
