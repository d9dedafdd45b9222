import { execFile as execFileCallback } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import { ensureKubectl } from '@ccproxy/test-harness';
import {
  adminConfig,
  bindOperatorRbac,
  ensureNamespace,
  hashKey,
  installCrds,
  kmsKey,
  openTestDatabase,
  operatorConfig,
  silent,
} from './kube-fixture.ts';

const execFile = promisify(execFileCallback);
const examples = fileURLToPath(new URL('../../examples/kubernetes/', import.meta.url));

/**
 * What a platform engineer types: `kubectl apply -f examples/kubernetes/`, `kubectl wait`,
 * `kubectl get` (printer columns, the `ccproxy` category), `kubectl delete` — with kubectl at
 * the API server's version, against the operator.
 */
describe('kubectl against the operator', () => {
  let dir: string;
  let kubectl: (...args: string[]) => Promise<{ stdout: string; stderr: string; code: number }>;
  let db: Database;
  let operator: KubeOperator;

  beforeAll(async () => {
    const admin = adminConfig();
    await installCrds(admin);
    await bindOperatorRbac(admin);
    // The examples name their namespace, as GitOps folders do.
    await ensureNamespace(admin, 'team-a');
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-kubectl-'));
    await writeFile(join(dir, 'kubeconfig'), inject('kubeconfig'), { mode: 0o600 });
    const bin = await ensureKubectl();
    kubectl = (...args) =>
      execFile(bin, ['--kubeconfig', join(dir, 'kubeconfig'), ...args], { timeout: 60_000 }).then(
        ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
        (error: { stdout?: string; stderr?: string; code?: number }) => ({
          stdout: error.stdout ?? '',
          stderr: error.stderr ?? '',
          code: error.code ?? 1,
        }),
      );
    db = await openTestDatabase();
    operator = new KubeOperator({
      client: new KubeClient(operatorConfig(), 'team-a'),
      db,
      hashKey,
      wrapper: (await kmsKey()).wrapper,
      logger: silent,
      registry: createMetricsRegistry({ processMetrics: false }),
      rotationGraceSeconds: 60,
      publicUrl: undefined,
      breakerOpenMs: 60_000,
      namespace: 'team-a',
    });
    await operator.start();
    // A fresh machine builds kubectl here (the API server's build leaves most of it cached).
  }, 20 * 60_000);
  afterAll(async () => {
    await operator?.stop();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('apply, wait for Ready, get with printer columns and the ccproxy category, delete through the finalizers', async () => {
    const applied = await kubectl('apply', '-f', examples);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/accesskey\.ccproxy\.io\/alice-laptop created/);

    const waited = await kubectl(
      'wait',
      '-n',
      'team-a',
      '--for=condition=Ready',
      '--timeout=30s',
      'proxyuser/alice',
      'accesskey/alice-laptop',
      'bedrockkey/alice-laptop-bedrock',
    );
    expect(waited).toMatchObject({ code: 0 });
    expect(waited.stdout.trim().split('\n')).toHaveLength(3);

    const keys = await kubectl('get', 'accesskeys', '-n', 'team-a');
    const [header, row] = keys.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/));
    // "Is it working, and why not": Ready with its reason; -o wide adds the message.
    expect(header).toEqual(['NAME', 'USER', 'ROUTING', 'READY', 'REASON', 'KEY', 'BREAKER', 'AGE']);
    expect(row?.slice(0, 7)).toEqual([
      'alice-laptop',
      'alice',
      'PlanWithFailover',
      'True',
      'KeyActive',
      expect.stringMatching(/^ak_/),
      'closed',
    ]);
    const wide = await kubectl('get', 'ak', '-n', 'team-a', '-o', 'wide');
    expect(wide.stdout).toContain('global.anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(wide.stdout).toContain('Access key is active.');
    // kubectl explain documents every level, from the kind down to a map's values.
    const explained = await Promise.all(
      [
        'accesskey',
        'accesskey.spec',
        'accesskey.spec.bedrock.modelMap',
        'accesskey.status.conditions.reason',
        'bedrockkey.spec.secretRef.key',
        'proxyuser.spec.suspended',
      ].map((path) => kubectl('explain', path)),
    );
    for (const result of explained) expect(result.stdout).not.toContain('<empty>');
    expect(explained[0]?.stdout).toContain('One access key of a ProxyUser');
    expect(explained[1]?.stdout).toMatch(/secretName\s+<string> -required-\n\s+Secret holding the key/);
    expect(explained[2]?.stdout).toContain('Anthropic model name (as Claude Code sends it)');
    expect(explained[3]?.stdout).toContain('CamelCase');
    expect(explained[4]?.stdout).toContain('Data key in the Secret');
    expect(explained[5]?.stdout).toContain('every AccessKey of this user is refused');
    const all = await kubectl('get', 'ccproxy', '-n', 'team-a', '-o', 'name');
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'accesskey.ccproxy.io/alice-laptop',
      'bedrockkey.ccproxy.io/alice-laptop-bedrock',
      'proxyuser.ccproxy.io/alice',
    ]);

    const immutable = await kubectl(
      'patch',
      'accesskey',
      'alice-laptop',
      '-n',
      'team-a',
      '--type=merge',
      '-p',
      '{"spec":{"userRef":{"name":"mallory"}}}',
    );
    expect(immutable.code).not.toBe(0);
    expect(immutable.stderr).toContain('userRef is immutable');

    const deleted = await kubectl('delete', '-f', examples, '--wait=true', '--timeout=30s');
    expect(deleted).toMatchObject({ code: 0 });
    expect(await db.query('SELECT 1 FROM access_keys UNION ALL SELECT 1 FROM users')).toEqual([]);
  });

  it('refuses a BedrockKey whose secretRef does not match its auth (the CEL rule, on the API server)', async () => {
    const apply = async (name: string, spec: string) => {
      const file = join(dir, `${name}.yaml`);
      await writeFile(
        file,
        `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: ${name}, namespace: team-a }\nspec: ${spec}\n`,
      );
      return kubectl('apply', '--dry-run=server', '-f', file);
    };
    const rule = 'secretRef is required with auth ApiKey and not allowed with auth AwsIdentity';
    const both = await apply('both', '{ accessKeyRef: { name: x }, auth: AwsIdentity, secretRef: { name: s } }');
    expect(both.stderr).toContain(rule);
    const neither = await apply('neither', '{ accessKeyRef: { name: x } }');
    expect(neither.stderr).toContain(rule);
    const identity = await apply('identity', '{ accessKeyRef: { name: x }, auth: AwsIdentity }');
    expect(identity).toMatchObject({ code: 0, stderr: '' });
    const apiKey = await apply('api-key', '{ accessKeyRef: { name: x }, secretRef: { name: s } }');
    expect(apiKey).toMatchObject({ code: 0, stderr: '' });
  });
});
