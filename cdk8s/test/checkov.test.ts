import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkov,
  ensureCheckovPython,
  ensureHelmBinary,
  runHelm,
  unskipped,
  unusedSkips,
  type CheckovFinding,
  type CheckovSkip,
} from '@ccproxy/test-harness';
import { buildApp } from '../src/app.ts';
import { chartDir, valuesSets } from './chart-values.ts';

/**
 * checkov's Kubernetes checks the chart and the cdk8s app do not follow, each with its reason
 * (docs/deployment.md, "Static checks", lists them). Any other failed check fails the test with
 * its id, resource and file. An entry no finding needs any more fails the test too.
 */
export const kubernetesSkips: readonly CheckovSkip[] = [
  {
    id: 'CKV_K8S_11',
    reason:
      'no CPU limit: CFS throttling stalls a streaming proxy mid-stream; the CDK estate sets requests = limits on Fargate itself (the kube-score skip container-cpu-limit, same reason)',
  },
  {
    id: 'CKV_K8S_15',
    reason:
      'imagePullPolicy IfNotPresent: the image is pinned by tag or by digest (image.digest); Always adds a registry round trip to every start without changing what runs',
  },
  {
    id: 'CKV_K8S_43',
    reason:
      'a chart cannot know its image digest before it is built: image.digest pins it (the secretsManager values set and the CDK estate do, and pass this check)',
  },
  {
    id: 'CKV_K8S_35',
    reason:
      'secrets as environment variables from a Kubernetes Secret is the chart’s non-AWS mode; with aws.secretIds (the CDK estate) the processes read Secrets Manager at start and no Secret is referenced (that values set passes this check)',
  },
  {
    id: 'CKV_K8S_38',
    resource: /^Deployment\.[^.]+\.ccp-(operator|admin)$/,
    reason:
      'the operator watches the CRDs and Secrets and the admin writes the CRDs: both call the Kubernetes API with their service account token (the proxy mounts none)',
  },
  {
    id: 'CKV_K8S_155',
    resource: /^ClusterRole\.[^.]+\.ccp-operator-webhook$/,
    reason:
      'the operator sets the caBundle of its own admission webhook: get and patch on mutatingwebhookconfigurations narrowed by resourceNames to that one configuration, which is cluster-scoped (so a ClusterRole); no other webhook configuration can be read or changed',
  },
];

let dir: string;
let findings: CheckovFinding[];
let passed: number;
beforeAll(async () => {
  await ensureHelmBinary();
  // First run on a machine: installs checkov (hash-pinned) from PyPI into a cached venv (about a minute).
  await ensureCheckovPython();
  dir = await mkdtemp(join(tmpdir(), 'ccproxy-checkov-'));
  const files: string[] = [];
  for (const [name, values] of Object.entries(valuesSets)) {
    const valuesFile = join(dir, `${name}.values.json`);
    await writeFile(valuesFile, JSON.stringify(values));
    const { stdout } = await runHelm(['template', 'ccp', chartDir, '--namespace', 'ccproxy', '-f', valuesFile]);
    await writeFile(join(dir, `chart-${name}.yaml`), stdout);
    const synthesized = buildApp({ overrides: values, namespace: 'ccproxy', releaseName: 'ccp' }).app.synthYaml();
    await writeFile(join(dir, `cdk8s-${name}.yaml`), synthesized);
    files.push(`chart-${name}.yaml`, `cdk8s-${name}.yaml`);
  }
  ({ failed: findings, passed } = await checkov(files, 'kubernetes', dir));
}, 20 * 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkov over the rendered chart and the cdk8s output', () => {
  it('finds nothing beyond the documented skip list (every values set, chart and cdk8s)', () => {
    expect(passed).toBeGreaterThan(1000);
    expect(unskipped(findings, kubernetesSkips)).toEqual([]);
    expect(unusedSkips(findings, kubernetesSkips)).toEqual([]);
  });

  it('every skip is scoped and says why', () => {
    for (const skip of kubernetesSkips) expect(skip.reason.length, skip.id).toBeGreaterThan(40);
  });

  it('really checks: a privileged Deployment fails, named by check id, resource and file', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: bad, namespace: ccproxy }\nspec:\n  selector: { matchLabels: { app: bad } }\n  template:\n    metadata: { labels: { app: bad } }\n    spec:\n      containers: [{ name: bad, image: "busybox:1", securityContext: { privileged: true } }]\n',
    );
    const { failed } = await checkov(['bad.yaml'], 'kubernetes', dir);
    expect(unskipped(failed, kubernetesSkips)).toContainEqual(
      expect.stringMatching(
        /^CKV_K8S_16 Deployment\.ccproxy\.bad bad\.yaml:1-\d+ \(Container should not be privileged\)$/,
      ),
    );
  });
});
