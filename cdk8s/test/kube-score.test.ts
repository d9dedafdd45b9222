import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHelmBinary, ensureKubeScoreBinary, kubeScore, runHelm } from '@ccproxy/test-harness';
import { chartDir } from './chart-values.ts';
import { valuesSets } from './chart-values.ts';

/**
 * kube-score's checks the chart does not follow, each with its reason (docs/deployment.md lists
 * them). Everything else kube-score reports, critical or warning, fails the test.
 */
const skipped: Record<string, string> = {
  'container-ephemeral-storage-request-and-limit':
    'the root filesystem is read-only; the only writable paths are emptyDirs with a sizeLimit (64Mi /tmp, 1Gi usage spool)',
  'container-image-pull-policy':
    'the image is pinned by tag or by digest (image.digest); Always adds a registry round-trip to every start without changing what runs',
  'pod-networkpolicy':
    'egress stays open in the NetworkPolicy (Anthropic has no fixed addresses); on EKS the pod security group limits egress, ingress is covered by the chart NetworkPolicies',
  'deployment-has-host-podantiaffinity':
    'topologySpreadConstraints spread replicas over zones and hosts (ScheduleAnyway, so a small cluster still schedules them)',
  'deployment-replicas': 'the admin runs one replica by default: it is not on the data path',
};
/** CPU limits throttle a streaming proxy; the CDK estate sets requests = limits on Fargate itself. */
const flags = ['--ignore-container-cpu-limit'];

let dir: string;
beforeAll(async () => {
  await ensureHelmBinary();
  // First run on a machine: builds kube-score from the Go module proxy (about 4 minutes).
  await ensureKubeScoreBinary();
  dir = await mkdtemp(join(tmpdir(), 'ccproxy-kube-score-'));
}, 20 * 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rendered(name: string, values: object): Promise<string> {
  const valuesFile = join(dir, `${name}.values.json`);
  await writeFile(valuesFile, JSON.stringify(values));
  const { stdout } = await runHelm(['template', 'ccp', chartDir, '--namespace', 'ccproxy', '-f', valuesFile]);
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stdout);
  return file;
}

describe('kube-score over the rendered chart', () => {
  it.each(['defaults', 'everything', 'secretsManager'] as const)(
    'finds nothing beyond the documented skip list (%s values)',
    async (name) => {
      const findings = await kubeScore([await rendered(name, valuesSets[name])], [...Object.keys(skipped)], flags);
      expect(findings).toEqual([]);
    },
  );

  it('really scores (a bare Deployment has critical findings)', async () => {
    const file = join(dir, 'bare.yaml');
    await writeFile(
      file,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: bare }\nspec:\n  selector: { matchLabels: { app: bare } }\n  template:\n    metadata: { labels: { app: bare } }\n    spec:\n      containers: [{ name: bare, image: "busybox:1" }]\n',
    );
    const findings = await kubeScore([file], [...Object.keys(skipped)], flags);
    expect(findings.filter((f) => f.startsWith('[CRITICAL]')).length).toBeGreaterThan(0);
  });
});
