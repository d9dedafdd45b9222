import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from 'typebox/value';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHelmBinary, KUBERNETES_VERSION, runHelm } from '@ccproxy/test-harness';
import { adminConfig, ensureNamespace, installCrds, uniqueName } from '../../operator/test/kube-fixture.ts';
import { adminRules, leaderElectionRules, operatorRules, webhookRules, webhookSecretRules } from '../src/rbac.ts';
import { renderValuesSchema, valuesSchema } from '../src/values.ts';
import { chartDir, find, helmTemplate, podSpec, secretVariables, valuesSets } from './chart-values.ts';
import { dryRunApply, installMonitoringCrds } from './dry-run.ts';
import { prometheusOperatorCrds } from './prometheus-crds.ts';

const crdsDir = fileURLToPath(new URL('../../crds/', import.meta.url));
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ccproxy-chart-'));
  // On a fresh machine these build helm and controller-gen from the Go module proxy (minutes), once.
  await Promise.all([ensureHelmBinary(), prometheusOperatorCrds()]);
}, 20 * 60_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function valuesFile(values: object): Promise<string> {
  const file = join(scratch, `${uniqueName('values')}.json`);
  await writeFile(file, JSON.stringify(values)); // JSON is YAML, and exact about types
  return file;
}

const template = (values: object, namespace?: string) => helmTemplate(values, namespace);

describe('the Helm chart', () => {
  it('ships exactly the generated CRDs', async () => {
    const generated = (await readdir(crdsDir)).filter((f) => f.endsWith('.yaml')).sort();
    expect((await readdir(join(chartDir, 'crds'))).sort()).toEqual(generated);
    for (const file of generated) {
      expect(
        await readFile(join(chartDir, 'crds', file), 'utf8'),
        `charts/claude-code-proxy/crds/${file} drifted: cp crds/*.yaml charts/claude-code-proxy/crds/`,
      ).toBe(await readFile(join(crdsDir, file), 'utf8'));
    }
  });

  it('has the values schema generated from the config schemas, and values.yaml satisfies it', async () => {
    expect(
      await readFile(join(chartDir, 'values.schema.json'), 'utf8'),
      'run: node cdk8s/src/generate-values-schema.ts',
    ).toBe(renderValuesSchema());
    const defaults: unknown = parse(await readFile(join(chartDir, 'values.yaml'), 'utf8'));
    expect([...Value.Errors(valuesSchema, defaults)].map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);
  });

  it.each(Object.entries(valuesSets))('passes helm lint --strict with the %s values', async (_name, values) => {
    const { stdout } = await runHelm([
      'lint',
      '--strict',
      chartDir,
      '--kube-version',
      KUBERNETES_VERSION,
      '-f',
      await valuesFile(values),
    ]);
    expect(stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('refuses invalid or inline-secret values at install time, naming each problem', async () => {
    const bad = {
      proxy: {
        config: { CCPROXY_BREAKER_FAILURES: 0, DATABASE_URL: 'postgres://u:p@db/ccproxy', CCPROXY_LOG_LEVEL: 'loud' },
      },
      existingSecret: { name: '' },
    };
    const failure = await template(bad).then(
      () => undefined,
      (error: unknown) => String(error),
    );
    expect(failure).toContain("at '/proxy/config/CCPROXY_BREAKER_FAILURES': minimum: got 0, want 1");
    // Secret variables have no place in `config`: they come from existingSecret.
    expect(failure).toContain("additional properties 'DATABASE_URL' not allowed");
    expect(failure).toMatch(/CCPROXY_LOG_LEVEL/);
    expect(failure).toMatch(/existingSecret\/name/);
  });

  it('renders hardened workloads whose credentials come only from the existing Secrets', async () => {
    const objects = await template(valuesSets.defaults);
    for (const component of ['operator', 'proxy', 'admin']) {
      const pod = podSpec(find(objects, 'Deployment', `ccp-${component}`));
      expect(pod.serviceAccountName).toBe(`ccp-${component}`);
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.topologySpreadConstraints?.map((c) => c.topologyKey)).toEqual([
        'topology.kubernetes.io/zone',
        'kubernetes.io/hostname',
      ]);
      const [container] = pod.containers;
      expect(container?.args).toEqual([component]);
      expect(container?.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container?.resources?.requests?.memory).toBeDefined();
      expect(container?.resources?.limits?.memory).toBeDefined();
      expect([container?.livenessProbe?.httpGet?.path, container?.readinessProbe?.httpGet?.path]).toEqual([
        '/healthz',
        '/readyz',
      ]);
      for (const variable of container?.env ?? []) {
        if (!secretVariables.has(variable.name)) continue;
        expect(variable.value, `${component} ${variable.name} inline`).toBeUndefined();
        expect(variable.valueFrom?.secretKeyRef?.name).toBe(
          component === 'admin' && variable.name.startsWith('CCPROXY_ADMIN_')
            ? 'claude-code-proxy-admin'
            : 'claude-code-proxy',
        );
      }
    }
    const proxy = podSpec(find(objects, 'Deployment', 'ccp-proxy'));
    expect(proxy.terminationGracePeriodSeconds).toBe(600);
    // The data dir (usage spool) is the emptyDir: the root filesystem is read-only.
    const dataDir = proxy.containers[0]?.env?.find((e) => e.name === 'CCPROXY_DATA_DIR')?.value;
    const mount = proxy.containers[0]?.volumeMounts?.find((m) => m.mountPath === dataDir);
    expect(proxy.volumes?.find((v) => v.name === mount?.name)?.emptyDir).toBeDefined();
    expect(find(objects, 'HorizontalPodAutoscaler', 'ccp-proxy').spec).toMatchObject({
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [{ resource: { name: 'cpu', target: { averageUtilization: 70 } } }],
    });
    expect(find(objects, 'PodDisruptionBudget', 'ccp-proxy').spec).toMatchObject({ minAvailable: 1 });
  });

  it('with Secrets Manager ids references no Kubernetes Secret, and runs the image by digest', async () => {
    const objects = await template(valuesSets.secretsManager);
    const ids = valuesSets.secretsManager.aws.secretIds;
    const expected: Record<string, Record<string, string>> = {
      operator: { CCPROXY_DATABASE_SECRET_ID: ids.database, CCPROXY_KEY_HASHER_SECRET_ID: ids.keyHasher },
      proxy: { CCPROXY_DATABASE_SECRET_ID: ids.database, CCPROXY_KEY_HASHER_SECRET_ID: ids.keyHasher },
      admin: {
        CCPROXY_DATABASE_SECRET_ID: ids.database,
        CCPROXY_ADMIN_PASSWORD_SECRET_ID: ids.adminPassword,
        CCPROXY_ADMIN_SESSION_SECRET_ID: ids.adminSessionSecret,
        CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: ids.adminOidcClientSecret,
      },
    };
    for (const [component, variables] of Object.entries(expected)) {
      const [container] = podSpec(find(objects, 'Deployment', `ccp-${component}`)).containers;
      const env = container?.env ?? [];
      expect(
        env.filter((e) => e.valueFrom?.secretKeyRef !== undefined).map((e) => e.name),
        component,
      ).toEqual([]);
      for (const [name, value] of Object.entries(variables))
        expect(env.find((e) => e.name === name)?.value, `${component} ${name}`).toBe(value);
      expect(env.filter((e) => e.name.endsWith('_SECRET_ID')).length, component).toBe(Object.keys(variables).length);
      if (component !== 'admin')
        expect(env.find((e) => e.name === 'CCPROXY_KMS_KEY_ID')?.value).toBe(valuesSets.secretsManager.aws.kmsKeyId);
      expect(container?.image).toBe(`ghcr.io/claude-code-proxy/ccproxy@${valuesSets.secretsManager.image.digest}`);
    }
  });

  it("grants exactly the operator's and the admin's RBAC rules (operator/src/rbac.ts, cdk8s/src/rbac.ts)", async () => {
    for (const [values, kind] of [
      [valuesSets.defaults, 'ClusterRole'],
      [valuesSets.everything, 'Role'],
    ] as const) {
      const objects = await template(values);
      const prefix = 'fullnameOverride' in values ? values.fullnameOverride : 'ccp';
      expect(find(objects, kind, `${prefix}-operator`).rules).toEqual(operatorRules);
      expect(find(objects, kind, `${prefix}-admin`).rules).toEqual(adminRules);
      expect(find(objects, 'Role', `${prefix}-operator-leader-election`).rules).toEqual(leaderElectionRules);
      // The webhook's: its one configuration by name (cluster-scoped even with a watched
      // namespace), and its TLS Secret beside the Lease.
      expect(find(objects, 'ClusterRole', `${prefix}-operator-webhook`).rules).toEqual(
        webhookRules(`${prefix}-operator`),
      );
      expect(find(objects, 'Role', `${prefix}-operator-webhook-tls`).rules).toEqual(
        webhookSecretRules(`${prefix}-operator-webhook-tls`),
      );
      // The proxy needs no Kubernetes API at all.
      expect(
        objects
          .filter((o) => o.kind.endsWith('RoleBinding'))
          .flatMap((o) => (o.subjects as Array<{ name: string }>).map((s) => s.name)),
      ).not.toContain(`${prefix}-proxy`);
    }
  });

  it('renders the admission webhook with no caBundle (the operator sets it), and nothing of it when off', async () => {
    const on = await template(valuesSets.everything);
    const configuration = find(on, 'MutatingWebhookConfiguration', 'ccp-operator') as unknown as {
      webhooks: Array<Record<string, unknown> & { clientConfig: Record<string, unknown> }>;
    };
    expect(configuration.webhooks).toHaveLength(1);
    expect(configuration.webhooks[0]).toMatchObject({
      failurePolicy: 'Ignore',
      sideEffects: 'None',
      matchPolicy: 'Equivalent',
      timeoutSeconds: 2,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'team-a' } },
    });
    expect(configuration.webhooks[0]?.clientConfig).not.toHaveProperty('caBundle');
    const operator = podSpec(find(on, 'Deployment', 'ccp-operator')).containers[0];
    expect(operator?.ports?.map((p) => p.name)).toEqual(['http', 'webhook']);
    expect(operator?.env?.find((e) => e.name === 'CCPROXY_WEBHOOK_CONFIGURATION')?.value).toBe('ccp-operator');
    const off = await template(valuesSets.minimal);
    expect(off.filter((o) => o.kind === 'MutatingWebhookConfiguration' || o.metadata.name.includes('webhook'))).toEqual(
      [],
    );
    const plain = podSpec(off.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-operator')) as never)
      .containers[0];
    expect(plain?.env?.map((e) => e.name)).not.toContain('CCPROXY_WEBHOOK_CONFIGURATION');
  });

  it('renders typed config as env strings and the optional features when enabled', async () => {
    const objects = await template(valuesSets.everything);
    const env = (name: string) =>
      Object.fromEntries(
        (podSpec(find(objects, 'Deployment', name)).containers[0]?.env ?? []).map((e) => [e.name, e.value]),
      );
    // Helm reads YAML numbers as floats; the chart must not print 1.8e+06.
    expect(env('ccp-proxy')).toMatchObject({
      CCPROXY_BREAKER_OPEN_MS: '1800000',
      CCPROXY_METER_PLAN: 'false',
      AWS_REGION: 'ap-northeast-2',
    });
    expect(env('ccp-operator')).toMatchObject({
      CCPROXY_RESYNC_SECONDS: '120',
      CCPROXY_WATCH_NAMESPACE: 'team-a',
      CCPROXY_PUBLIC_URL: 'https://ccproxy.example.com',
    });
    expect(find(objects, 'ServiceAccount', 'ccp-operator').metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ccproxy-operator',
    });
    const ingress = find(objects, 'Ingress', 'ccp');
    expect(
      JSON.parse(ingress.metadata.annotations?.['alb.ingress.kubernetes.io/conditions.ccp-admin'] ?? 'null'),
    ).toEqual([{ field: 'source-ip', sourceIpConfig: { values: ['10.0.0.0/8', '192.168.0.0/16'] } }]);
    const alerts = (
      (find(objects, 'PrometheusRule', 'ccp').spec as { groups: Array<{ rules: Array<{ alert: string }> }> }).groups[0]
        ?.rules ?? []
    ).map((r) => r.alert);
    expect(alerts).toEqual([
      'ClaudeCodeProxyHighErrorRate',
      'ClaudeCodeProxyHighLatency',
      'ClaudeCodeProxyHighFailoverRate',
      'ClaudeCodeProxyUnhealthyReplicas',
      'ClaudeCodeProxyOperatorNoLeader',
    ]);
    expect(objects.filter((o) => o.kind === 'ServiceMonitor')).toHaveLength(1);
  });

  it.each(Object.entries(valuesSets))(
    'renders %s values that the real API server accepts (server-side dry-run)',
    async (_name, values) => {
      const config = adminConfig();
      const namespace = uniqueName('chart');
      await ensureNamespace(config, namespace);
      await ensureNamespace(config, 'team-a'); // the `everything` set's watched namespace
      await installCrds(config);
      await installMonitoringCrds(config);
      const objects = await template(values, namespace);
      expect(objects.length).toBeGreaterThan(10);
      expect(await dryRunApply(config, objects, 'ccproxy-chart-test')).toEqual([]);
    },
  );

  it('the dry-run refuses what the API server would refuse (so the checks above are not vacuous)', async () => {
    const config = adminConfig();
    const namespace = uniqueName('chart');
    await ensureNamespace(config, namespace);
    await installMonitoringCrds(config);
    const objects = await template(valuesSets.everything, namespace);
    const proxy = find(objects, 'Deployment', 'ccp-proxy');
    const broken = structuredClone(proxy);
    podSpec(broken).containers[0]?.ports?.splice(0, 1, { name: 'http', containerPort: 0 });
    const misplaced = {
      ...structuredClone(proxy),
      spec: { ...(proxy.spec as object), terminationGracePeriodSeconds: 600 },
    };
    // The upstream ServiceMonitor schema is really enforced: `interval` must be a duration.
    const monitor = find(objects, 'ServiceMonitor', 'ccp');
    const badMonitor = {
      ...monitor,
      spec: { ...(monitor.spec as { endpoints: object[] }), endpoints: [{ port: 'http', interval: 'often' }] },
    };
    const refused = await dryRunApply(config, [broken, misplaced, badMonitor], 'ccproxy-chart-test');
    expect(refused).toHaveLength(3);
    expect(refused[0]).toContain('containerPort');
    expect(refused[1]).toContain('.spec.terminationGracePeriodSeconds: field not declared in schema');
    expect(refused[2]).toContain('spec.endpoints[0].interval');
  });
});
