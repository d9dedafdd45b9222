import { beforeAll, describe, expect, it } from 'vitest';
import { ensureHelmBinary } from '@ccproxy/test-harness';
import { adminConfig, ensureNamespace, installCrds, uniqueName } from '../../operator/test/kube-fixture.ts';
import { buildApp, resolveValues, type ValuesOverrides } from '../src/app.ts';
import { operatorRules } from '../src/rbac.ts';
import { find, helmTemplate, podSpec, valuesSets, type Container, type EnvVar } from './chart-values.ts';
import { dryRunApply, parseManifests, type Manifest } from './dry-run.ts';

const synth = (values: ValuesOverrides, namespace = 'ccproxy') =>
  parseManifests(buildApp({ overrides: values, namespace, releaseName: 'ccp' }).app.synthYaml());

/**
 * Kinds only the chart renders: what crds/ holds — the CRDs and the admission policy beside them
 * (infra/ applies crds/ itself) — and the Prometheus Operator's kinds.
 */
const chartOnly = new Set([
  'CustomResourceDefinition',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'ServiceMonitor',
  'PrometheusRule',
]);

/**
 * What "the same deployment" means: the same objects (kind, namespace, name) and, per object,
 * the fields that decide behaviour: images, args, ports, env, probes, security, volumes,
 * replicas, RBAC rules and bindings, autoscaling, budgets and policies. Labels and
 * tool-specific defaults (cdk8s-plus spells out dnsPolicy etc.) are not compared.
 */
function essence(object: Manifest): unknown {
  const spec = object.spec as Record<string, unknown> | undefined;
  const id = `${object.kind} ${object.metadata.namespace ?? '-'}/${object.metadata.name}`;
  switch (object.kind) {
    case 'Deployment': {
      const pod = podSpec(object);
      return {
        id,
        replicas: spec?.replicas,
        serviceAccountName: pod.serviceAccountName,
        grace: pod.terminationGracePeriodSeconds,
        runAsNonRoot: pod.securityContext?.runAsNonRoot,
        spread: pod.topologySpreadConstraints?.map((c) => c.topologyKey),
        volumes: (pod.volumes ?? []).map((v) => v.name).sort(),
        containers: pod.containers.map(container),
      };
    }
    case 'Service':
      return {
        id,
        selector: spec?.selector,
        ports: (spec?.ports as Array<{ name: string; port: number }>).map(({ name, port }) => ({ name, port })),
      };
    case 'ServiceAccount':
      return {
        id,
        annotations: object.metadata.annotations ?? {},
        automount: object.automountServiceAccountToken ?? true,
      };
    case 'ClusterRole':
    case 'Role':
      return { id, rules: object.rules };
    case 'MutatingWebhookConfiguration':
      return { id, webhooks: object.webhooks };
    case 'ClusterRoleBinding':
    case 'RoleBinding':
      return { id, roleRef: object.roleRef, subjects: object.subjects };
    case 'HorizontalPodAutoscaler':
      return {
        id,
        target: (spec?.scaleTargetRef as { name: string }).name,
        min: spec?.minReplicas,
        max: spec?.maxReplicas,
        metrics: spec?.metrics,
      };
    case 'ConfigMap':
      return { id, dashboardLabel: object.metadata.labels?.grafana_dashboard, data: object.data };
    case 'Ingress':
      return { id, annotations: object.metadata.annotations, spec };
    case 'PodDisruptionBudget':
    case 'NetworkPolicy':
      return { id, spec: JSON.parse(JSON.stringify(spec).replaceAll('"targetPort"', '"port"')) as unknown };
    default:
      return { id, unexpected: true };
  }
}

function container(c: Container): unknown {
  // cdk8s-plus writes `optional: false` where Helm leaves the default out.
  const env = (c.env ?? []).map((e: EnvVar) =>
    e.valueFrom?.secretKeyRef?.optional === false
      ? {
          ...e,
          valueFrom: { secretKeyRef: { name: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key } },
        }
      : e,
  );
  return {
    name: c.name,
    image: c.image,
    args: c.args,
    ports: c.ports?.map(({ name, containerPort }) => ({ name, containerPort })),
    env: env.sort((a, b) => a.name.localeCompare(b.name)),
    probes: [c.livenessProbe?.httpGet?.path, c.readinessProbe?.httpGet?.path],
    lifecycle: c.lifecycle,
    security: {
      readOnlyRootFilesystem: c.securityContext?.readOnlyRootFilesystem,
      allowPrivilegeEscalation: c.securityContext?.allowPrivilegeEscalation,
      capabilities: c.securityContext?.capabilities,
    },
    resources: c.resources,
    mounts: (c.volumeMounts ?? [])
      .map(({ name, mountPath }) => ({ name, mountPath }))
      .sort((a, b) => a.mountPath.localeCompare(b.mountPath)),
  };
}

const byId = (objects: Manifest[]) =>
  objects
    .filter((o) => !chartOnly.has(o.kind))
    .map(essence)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

// On a fresh machine this builds helm from the Go module proxy (minutes), once; then it is cached.
beforeAll(() => ensureHelmBinary(), 20 * 60_000);

describe('the cdk8s app', () => {
  it.each(Object.entries(valuesSets))(
    'deploys the same objects as the Helm chart with the %s values',
    async (_name, values) => {
      const [chart, cdk8s] = [await helmTemplate(values, 'ccproxy'), synth(values, 'ccproxy')];
      expect(byId(cdk8s)).toEqual(byId(chart));
    },
  );

  it("takes the chart's defaults and refuses what the chart refuses", () => {
    expect(resolveValues().proxy.autoscaling).toEqual({
      enabled: true,
      minReplicas: 2,
      maxReplicas: 10,
      targetCPUUtilizationPercentage: 70,
    });
    expect(() =>
      resolveValues({ proxy: { config: { CCPROXY_BREAKER_FAILURES: 0, DATABASE_URL: 'postgres://inline' } } }),
    ).toThrow(/CCPROXY_BREAKER_FAILURES[\s\S]*DATABASE_URL|DATABASE_URL[\s\S]*CCPROXY_BREAKER_FAILURES/);
  });

  it('grants the operator exactly operatorRules', () => {
    expect(find(synth({}), 'ClusterRole', 'ccp-operator').rules).toEqual(operatorRules);
  });

  it.each(Object.entries(valuesSets))(
    'synthesizes %s values that the real API server accepts (server-side dry-run)',
    async (_name, values) => {
      const config = adminConfig();
      const namespace = uniqueName('cdk8s');
      await ensureNamespace(config, namespace);
      await ensureNamespace(config, 'team-a'); // the `everything` set's watched namespace
      await installCrds(config);
      const objects = synth(values, namespace);
      expect(objects.length).toBeGreaterThan(10);
      expect(await dryRunApply(config, objects, 'ccproxy-cdk8s-test')).toEqual([]);
    },
  );
});
