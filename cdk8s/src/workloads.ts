import { readFileSync } from 'node:fs';
import { ApiObject, Chart, Duration, JsonPatch, Size, type ChartProps } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  IntOrString,
  KubeClusterRole,
  KubeClusterRoleBinding,
  KubeIngress,
  KubeNetworkPolicy,
  KubePodDisruptionBudget,
  KubeRole,
  KubeRoleBinding,
} from 'cdk8s-plus-27/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { adminRules, leaderElectionRules, operatorRules, type PolicyRule } from './rbac.ts';
import { admissionWebhook, webhookPort } from './webhook.ts';
import { runtimeSecretVariables, type ChartValues, type SecretIdKey } from './values.ts';

export type Component = 'operator' | 'proxy' | 'admin';

export interface ClaudeCodeProxyProps extends ChartProps {
  /** Validated settings (see `resolveValues`): the same shape and meaning as the Helm chart's values. */
  readonly values: ChartValues;
  /** The image tag when `values.image.tag` is empty (the chart's appVersion). */
  readonly appVersion: string;
  /** Namespace of every namespaced object (the Helm release namespace). */
  readonly namespace: string;
  /** Prefix of every object name when `values.fullnameOverride` is empty (the Helm release name). */
  readonly releaseName: string;
}

const dashboardFile = new URL('../../charts/claude-code-proxy/dashboards/claude-code-proxy.json', import.meta.url);

const ports: Record<Component, number> = { proxy: 8080, admin: 8081, operator: 8082 };
/**
 * V8 sizes its heap from the container's whole memory limit and lets garbage fill it before
 * collecting: at 5,000 keys the operator holds ~70 MB live but grew to 400 MB RSS (npm run bench
 * -- operator-scale, which runs its leader with this too). The chart's operator.yaml sets the same.
 */
export const operatorNodeOptions = '--max-old-space-size=128';
const pullPolicies = {
  Always: kplus.ImagePullPolicy.ALWAYS,
  IfNotPresent: kplus.ImagePullPolicy.IF_NOT_PRESENT,
  Never: kplus.ImagePullPolicy.NEVER,
} as const;

type ComponentValues = ChartValues[Component];

interface WorkloadSpec {
  readonly replicas?: number;
  readonly terminationGracePeriodSeconds: number;
  /** Mount the ServiceAccount token: only for processes that call the Kubernetes API. */
  readonly automount: boolean;
  /** CCPROXY_DATA_DIR, on an emptyDir (the root filesystem is read-only). */
  readonly dataDir?: string;
  readonly env: Record<string, kplus.EnvValue>;
  readonly serviceAnnotations?: Record<string, string>;
  /** The operator's admission webhook: container port `webhook` 9443, Service port 443. */
  readonly webhook?: boolean;
}

type Quantity = string | number;

/**
 * The ALB keeps a deregistered target's connections for this long: as long as the pod may drain
 * (the termination grace), or the ALB would cut the streams Kubernetes lets the pod finish.
 */
function drainingTargetGroup(graceSeconds: number): Record<string, string> {
  return {
    'alb.ingress.kubernetes.io/target-group-attributes': `deregistration_delay.timeout_seconds=${graceSeconds}`,
  };
}

/** Kubernetes quantities ("250m", "256Mi") as cdk8s-plus resource objects. */
function resourcesOf(resources: ComponentValues['resources']): kplus.ContainerResources {
  const cpu = (q: Quantity | undefined) => (q === undefined ? undefined : parseCpu(q));
  const memory = (q: Quantity | undefined) => (q === undefined ? undefined : Size.mebibytes(parseMebibytes(q)));
  const pick = <T>(request: T | undefined, limit: T | undefined) => ({
    ...(request === undefined ? {} : { request }),
    ...(limit === undefined ? {} : { limit }),
  });
  return {
    cpu: pick(cpu(resources.requests.cpu), cpu(resources.limits.cpu)),
    memory: pick(memory(resources.requests.memory), memory(resources.limits.memory)),
  };
}

/** Millicores stay millicores ("250m"), as the chart writes them. */
function parseCpu(q: Quantity): kplus.Cpu {
  const text = String(q);
  return text.endsWith('m') ? kplus.Cpu.millis(Number(text.slice(0, -1))) : kplus.Cpu.units(Number(text));
}

/** A CPU quantity ("250m", "1") in cores. */
export function cpuCores(q: Quantity): number {
  const text = String(q);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

/** A memory quantity ("256Mi", "1Gi") in MiB; the units the chart's values use. */
export function parseMebibytes(q: Quantity): number {
  const match = /^([0-9.]+)(Mi|Gi)$/.exec(String(q));
  if (match === null) throw new Error(`memory ${String(q)}: only Mi and Gi quantities are supported by the cdk8s app`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

/**
 * The operator, proxy and admin workloads as the Helm chart renders them, for CDK users (infra/
 * deploys this onto EKS). The chart is the reference: a parity test renders both with the same
 * values and compares kinds, names, images, ports, env and RBAC rules.
 */
export class ClaudeCodeProxyChart extends Chart {
  readonly fullname: string;
  readonly #values: ChartValues;

  constructor(scope: Construct, id: string, props: ClaudeCodeProxyProps) {
    super(scope, id, {
      ...props,
      namespace: props.namespace,
      labels: { 'app.kubernetes.io/name': 'claude-code-proxy', 'app.kubernetes.io/instance': props.releaseName },
    });
    const { values } = props;
    this.#values = values;
    this.fullname = (values.fullnameOverride === '' ? props.releaseName : values.fullnameOverride)
      .slice(0, 40)
      .replace(/-+$/, '');
    // By digest when one is given: the exact image that was scanned, whatever the tag now points at.
    const image =
      values.image.digest === ''
        ? `${values.image.repository}:${values.image.tag === '' ? props.appVersion : values.image.tag}`
        : `${values.image.repository}@${values.image.digest}`;
    const secret = kplus.Secret.fromSecretName(this, 'existing-secret', values.existingSecret.name);
    const adminSecret = kplus.Secret.fromSecretName(this, 'existing-admin-secret', values.existingAdminSecret.name);
    const fromSecret = (from: kplus.ISecret, key: string, optional = false) =>
      kplus.EnvValue.fromSecretValue({ secret: from, key }, { optional });
    // With a Secrets Manager id the process reads the value at start: no Kubernetes Secret involved.
    const runtimeSecret = (key: SecretIdKey, from: kplus.ISecret, optional = false): Record<string, kplus.EnvValue> => {
      const { idVariable, variable } = runtimeSecretVariables[key];
      const id = values.aws.secretIds[key];
      return id === ''
        ? { [variable]: fromSecret(from, variable, optional) }
        : { [idVariable]: kplus.EnvValue.fromValue(id) };
    };
    const kmsKey = (optional: boolean): Record<string, kplus.EnvValue> => ({
      CCPROXY_KMS_KEY_ID:
        values.aws.kmsKeyId === ''
          ? fromSecret(secret, 'CCPROXY_KMS_KEY_ID', optional)
          : kplus.EnvValue.fromValue(values.aws.kmsKeyId),
    });
    const region: Record<string, kplus.EnvValue> =
      values.aws.region === '' ? {} : { AWS_REGION: kplus.EnvValue.fromValue(values.aws.region) };
    const watch = values.operator.watchNamespace;
    const webhook = values.operator.webhook.enabled;
    const operatorName = `${this.fullname}-operator`;

    const operator = this.workload('operator', image, {
      replicas: values.operator.replicas,
      terminationGracePeriodSeconds: 30,
      automount: true,
      webhook,
      env: {
        // The operator creates its TLS Secret and sets the caBundle itself (see the chart's operator.yaml).
        ...(webhook
          ? {
              CCPROXY_WEBHOOK_CONFIGURATION: kplus.EnvValue.fromValue(operatorName),
              CCPROXY_WEBHOOK_PORT: kplus.EnvValue.fromValue(String(webhookPort)),
              CCPROXY_WEBHOOK_SERVICE: kplus.EnvValue.fromValue(operatorName),
              CCPROXY_WEBHOOK_TLS_SECRET: kplus.EnvValue.fromValue(`${operatorName}-webhook-tls`),
            }
          : {}),
        POD_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
        // The leader-election Role is bound in this namespace.
        CCPROXY_OPERATOR_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
        ...(watch === '' ? {} : { CCPROXY_WATCH_NAMESPACE: kplus.EnvValue.fromValue(watch) }),
        ...(values.publicUrl === '' ? {} : { CCPROXY_PUBLIC_URL: kplus.EnvValue.fromValue(values.publicUrl) }),
        ...region,
        ...runtimeSecret('database', secret),
        ...runtimeSecret('keyHasher', secret),
        ...kmsKey(false),
      },
    });
    if (values.operator.replicas > 1) this.disruptionBudget('operator', { maxUnavailable: IntOrString.fromNumber(1) });
    this.rbac('operator', operatorRules, watch);
    const leaderElection = `${this.fullname}-operator-leader-election`;
    new KubeRole(this, 'operator-leader-election', {
      metadata: { name: leaderElection, namespace: props.namespace },
      rules: [...leaderElectionRules],
    });
    new KubeRoleBinding(this, 'operator-leader-election-binding', {
      metadata: { name: leaderElection, namespace: props.namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: leaderElection },
      subjects: [{ kind: 'ServiceAccount', name: operator.serviceAccount, namespace: props.namespace }],
    });
    if (webhook) admissionWebhook(this, operatorName, props.namespace, watch);

    const autoscaling = values.proxy.autoscaling;
    const proxy = this.workload('proxy', image, {
      ...(autoscaling.enabled ? {} : { replicas: values.proxy.replicas }),
      terminationGracePeriodSeconds: values.proxy.terminationGracePeriodSeconds,
      serviceAnnotations: drainingTargetGroup(values.proxy.terminationGracePeriodSeconds),
      // The proxy talks to Postgres and AWS only, never to the Kubernetes API.
      automount: false,
      // The usage spool: an emptyDir survives container restarts, which covers Postgres outages.
      dataDir: '/var/lib/ccproxy',
      env: {
        PORT: kplus.EnvValue.fromValue('8080'),
        CCPROXY_DATA_DIR: kplus.EnvValue.fromValue('/var/lib/ccproxy'),
        ...region,
        ...runtimeSecret('database', secret),
        ...runtimeSecret('keyHasher', secret),
        ...kmsKey(true),
        // With the database from Secrets Manager there is no Kubernetes Secret to look in.
        ...(values.aws.secretIds.planApiKey === '' && values.aws.secretIds.database !== ''
          ? {}
          : runtimeSecret('planApiKey', secret, true)),
      },
    });
    this.disruptionBudget('proxy', {
      minAvailable: IntOrString.fromNumber(values.proxy.podDisruptionBudget.minAvailable),
    });
    if (autoscaling.enabled) {
      new kplus.HorizontalPodAutoscaler(this, 'proxy-hpa', {
        metadata: { name: `${this.fullname}-proxy` },
        target: proxy.deployment,
        minReplicas: autoscaling.minReplicas,
        maxReplicas: autoscaling.maxReplicas,
        metrics: [
          kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(autoscaling.targetCPUUtilizationPercentage)),
        ],
        // Scaling down kills pods that may hold long streams: go slowly.
        scaleDown: {
          stabilizationWindow: Duration.minutes(10),
          policies: [{ replicas: kplus.Replicas.absolute(1), duration: Duration.minutes(2) }],
        },
      });
    }

    if (values.admin.enabled) {
      this.workload('admin', image, {
        replicas: values.admin.replicas,
        terminationGracePeriodSeconds: 30,
        automount: true,
        env: {
          // Its RBAC is a Role in the watched namespace: it must not list the cluster.
          ...(watch === '' ? {} : { CCPROXY_WATCH_NAMESPACE: kplus.EnvValue.fromValue(watch) }),
          ...region,
          ...runtimeSecret('database', secret),
          ...runtimeSecret('adminPassword', adminSecret),
          ...runtimeSecret('adminSessionSecret', adminSecret),
          // Single sign-on's client secret when the admin is a confidential client: by its Secrets
          // Manager id, else the existing Secret's optional key; with the admin's other secrets from
          // Secrets Manager and no id for this one there is no Secret to look in (a public PKCE client).
          ...(values.aws.secretIds.adminOidcClientSecret !== '' || values.aws.secretIds.adminPassword === ''
            ? runtimeSecret('adminOidcClientSecret', adminSecret, true)
            : {}),
        },
      });
      this.rbac('admin', adminRules, watch);
    }

    if (values.ingress.enabled) this.ingress(values);

    // The chart's Grafana dashboard, for Grafana's sidecar (which selects on the labels).
    if (values.metrics.grafanaDashboard.enabled)
      new kplus.ConfigMap(this, 'grafana-dashboard', {
        metadata: { name: `${this.fullname}-dashboard`, labels: values.metrics.grafanaDashboard.labels },
        data: { 'claude-code-proxy.json': readFileSync(dashboardFile, 'utf8').trimEnd() },
      });

    if (values.networkPolicy.enabled) {
      const components: Component[] = values.admin.enabled ? ['proxy', 'operator', 'admin'] : ['proxy', 'operator'];
      const labels = values.networkPolicy.ingressNamespaceLabels;
      for (const component of components) {
        const from =
          component !== 'operator' && Object.keys(labels).length > 0
            ? { from: [{ namespaceSelector: { matchLabels: labels } }] }
            : {};
        // Ingress to the http port only; egress stays open (Anthropic, Bedrock, KMS, Postgres are outside).
        new KubeNetworkPolicy(this, `${component}-network-policy`, {
          metadata: { name: `${this.fullname}-${component}` },
          spec: {
            podSelector: { matchLabels: this.selector(component) },
            policyTypes: ['Ingress'],
            ingress: [
              {
                ports: [
                  { port: IntOrString.fromString('http'), protocol: 'TCP' },
                  // The API server calls the admission webhook; its source address is the cluster's own.
                  ...(component === 'operator' && values.operator.webhook.enabled
                    ? [{ port: IntOrString.fromString('webhook'), protocol: 'TCP' }]
                    : []),
                ],
                ...from,
              },
            ],
          },
        });
      }
    }
  }

  /**
   * The proxy's preStop `sleep` action (Kubernetes 1.29+) postdates cdk8s-plus-27's generated
   * types, whose serializer drops it even from a JSON patch, so it goes in after serialization.
   */
  override toJson(): unknown[] {
    const proxy = `${this.fullname}-proxy`;
    return (
      super.toJson() as Array<{
        kind: string;
        metadata: { name: string };
        spec?: { template: { spec: { containers: Array<Record<string, unknown>> } } };
      }>
    ).map((object) => {
      const container =
        object.kind === 'Deployment' && object.metadata.name === proxy
          ? object.spec?.template.spec.containers[0]
          : undefined;
      // Let endpoints and the ALB drop this pod before it stops accepting connections.
      if (container !== undefined) container.lifecycle = { preStop: { sleep: { seconds: 10 } } };
      return object;
    });
  }

  /** Labels that select one component's pods (the chart's selector labels). */
  selector(component: Component): Record<string, string> {
    return {
      'app.kubernetes.io/name': 'claude-code-proxy',
      'app.kubernetes.io/instance': this.labels['app.kubernetes.io/instance'] ?? '',
      'app.kubernetes.io/component': component,
    };
  }

  private workload(
    component: Component,
    image: string,
    spec: WorkloadSpec,
  ): { deployment: kplus.Deployment; serviceAccount: string } {
    const values: ComponentValues = this.#values[component];
    const name = `${this.fullname}-${component}`;
    const serviceAccount = new kplus.ServiceAccount(this, `${component}-sa`, {
      metadata: { name, annotations: values.serviceAccount.annotations },
      automountToken: spec.automount,
    });
    const labels = this.selector(component);
    const deployment = new kplus.Deployment(this, component, {
      metadata: { name, labels },
      ...(spec.replicas === undefined ? {} : { replicas: spec.replicas }),
      select: false,
      podMetadata: { labels, annotations: values.podAnnotations },
      serviceAccount,
      automountServiceAccountToken: spec.automount,
      terminationGracePeriod: Duration.seconds(spec.terminationGracePeriodSeconds),
      securityContext: { ensureNonRoot: true, user: 10001, group: 10001, fsGroup: 10001 },
      strategy:
        component === 'proxy'
          ? kplus.DeploymentStrategy.rollingUpdate({
              maxSurge: kplus.PercentOrAbsolute.percent(25),
              maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
            })
          : undefined,
    });
    deployment.select(kplus.LabelSelector.of({ labels }));
    const port = ports[component];
    const container = deployment.addContainer({
      name: component,
      image,
      args: [component],
      imagePullPolicy: pullPolicies[this.#values.image.pullPolicy],
      ports: [
        { name: 'http', number: port, protocol: kplus.Protocol.TCP },
        ...(spec.webhook === true ? [{ name: 'webhook', number: webhookPort, protocol: kplus.Protocol.TCP }] : []),
      ],
      envVariables: {
        CCPROXY_HOST: kplus.EnvValue.fromValue('0.0.0.0'),
        // The operator's heap cap: see the chart's operator.yaml (operatorNodeOptions).
        ...(component === 'operator'
          ? {
              CCPROXY_OPERATOR_PORT: kplus.EnvValue.fromValue('8082'),
              NODE_OPTIONS: kplus.EnvValue.fromValue(operatorNodeOptions),
            }
          : {}),
        ...(component === 'admin' ? { CCPROXY_ADMIN_PORT: kplus.EnvValue.fromValue('8081') } : {}),
        ...spec.env,
        ...Object.fromEntries(
          Object.entries(values.config).map(([env, value]) => [env, kplus.EnvValue.fromValue(String(value))]),
        ),
      },
      startup: kplus.Probe.fromHttpGet('/healthz', { port, periodSeconds: Duration.seconds(2), failureThreshold: 60 }),
      liveness: kplus.Probe.fromHttpGet('/healthz', {
        port,
        periodSeconds: Duration.seconds(10),
        timeoutSeconds: Duration.seconds(3),
        failureThreshold: 3,
      }),
      readiness: kplus.Probe.fromHttpGet('/readyz', {
        port,
        periodSeconds: Duration.seconds(5),
        timeoutSeconds: Duration.seconds(3),
        failureThreshold: 2,
      }),
      resources: resourcesOf(values.resources),
      securityContext: {
        ensureNonRoot: true,
        user: 10001,
        group: 10001,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
      },
    });
    container.mount(
      '/tmp',
      kplus.Volume.fromEmptyDir(this, `${component}-tmp`, 'tmp', { sizeLimit: Size.mebibytes(64) }),
    );
    if (spec.dataDir !== undefined)
      container.mount(
        spec.dataDir,
        kplus.Volume.fromEmptyDir(this, `${component}-data`, 'data', { sizeLimit: Size.gibibytes(1) }),
      );
    // What cdk8s-plus-27 has no API for: seccomp, dropped capabilities, topology spread, the preStop sleep.
    const pod = '/spec/template/spec';
    const patches = [
      JsonPatch.add(`${pod}/securityContext/seccompProfile`, { type: 'RuntimeDefault' }),
      JsonPatch.add(`${pod}/containers/0/securityContext/capabilities`, { drop: ['ALL'] }),
      JsonPatch.add(
        `${pod}/topologySpreadConstraints`,
        ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
          maxSkew: 1,
          topologyKey,
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: labels },
          matchLabelKeys: ['pod-template-hash'],
        })),
      ),
    ];
    ApiObject.of(deployment).addJsonPatch(...patches);
    new kplus.Service(this, `${component}-service`, {
      metadata: { name, ...(spec.serviceAnnotations === undefined ? {} : { annotations: spec.serviceAnnotations }) },
      selector: kplus.Pods.select(this, `${component}-pods`, { labels }),
      ports: [
        { name: 'http', port, targetPort: port, protocol: kplus.Protocol.TCP },
        ...(spec.webhook === true
          ? [{ name: 'webhook', port: 443, targetPort: webhookPort, protocol: kplus.Protocol.TCP }]
          : []),
      ],
    });
    return { deployment, serviceAccount: name };
  }

  /**
   * One Ingress: `/ak/` on the proxy host goes to the proxy (never /metrics or health), and the admin
   * gets a host of its own, only from `adminSourceRanges` (a per-rule ALB condition).
   */
  private ingress(values: ChartValues): void {
    const { ingress } = values;
    const admin = values.admin.enabled && ingress.adminHost !== '';
    if (admin && ingress.adminSourceRanges.length === 0)
      throw new Error('ingress.adminHost needs ingress.adminSourceRanges: the admin is never exposed to every address');
    const condition = [{ field: 'source-ip', sourceIpConfig: { values: ingress.adminSourceRanges } }];
    const annotations = {
      ...ingress.annotations,
      ...(admin ? { [`alb.ingress.kubernetes.io/conditions.${this.fullname}-admin`]: JSON.stringify(condition) } : {}),
    };
    const path = (prefix: string, component: Component) => ({
      path: prefix,
      pathType: 'Prefix',
      backend: { service: { name: `${this.fullname}-${component}`, port: { number: ports[component] } } },
    });
    const hosts = [...(ingress.host === '' ? [] : [ingress.host]), ...(admin ? [ingress.adminHost] : [])];
    new KubeIngress(this, 'ingress', {
      metadata: { name: this.fullname, annotations },
      spec: {
        ingressClassName: ingress.className,
        ...(ingress.tlsSecretName === ''
          ? {}
          : { tls: [{ secretName: ingress.tlsSecretName, ...(hosts.length === 0 ? {} : { hosts }) }] }),
        // The ALB evaluates rules in order, and the proxy rule may match any host: the admin's first.
        rules: [
          ...(admin ? [{ host: ingress.adminHost, http: { paths: [path('/', 'admin')] } }] : []),
          {
            ...(ingress.host === '' ? {} : { host: ingress.host }),
            http: { paths: [path('/ak/', 'proxy')] },
          },
        ],
      },
    });
  }

  private disruptionBudget(
    component: Component,
    budget: { minAvailable?: IntOrString; maxUnavailable?: IntOrString },
  ): void {
    new KubePodDisruptionBudget(this, `${component}-pdb`, {
      metadata: { name: `${this.fullname}-${component}` },
      spec: { ...budget, selector: { matchLabels: this.selector(component) } },
    });
  }

  /** The cluster-wide rules, or a Role in the watched namespace (as the chart does). */
  private rbac(component: Component, rules: readonly PolicyRule[], watch: string): void {
    const name = `${this.fullname}-${component}`;
    const subjects = [{ kind: 'ServiceAccount', name, namespace: this.namespace ?? 'default' }];
    if (watch === '') {
      const role = new KubeClusterRole(this, `${component}-role`, { metadata: { name }, rules: [...rules] });
      const binding = new KubeClusterRoleBinding(this, `${component}-binding`, {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects,
      });
      // The chart's namespace is stamped on every object; cluster-scoped ones must not carry it.
      for (const object of [role, binding]) object.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
      return;
    }
    new KubeRole(this, `${component}-role`, { metadata: { name, namespace: watch }, rules: [...rules] });
    new KubeRoleBinding(this, `${component}-binding`, {
      metadata: { name, namespace: watch },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects,
    });
  }
}
