import type { App } from 'aws-cdk-lib';
import { buildApp, cpuCores, parseMebibytes } from '@ccproxy/cdk8s';
import { parseAllDocuments } from 'yaml';
import type { InfraStacks } from '../app.ts';
import { estimate, type CostLine, type PodSpec, type Templates } from './estimate.ts';

/** The estate's monthly cost: `app` synthesized, and its chart rendered with the values it installs. */
export function estateCost(app: App, stacks: InfraStacks): CostLine[] {
  const templates = app.synth().stacks.map((stack) => stack.template as Templates[number]);
  const values = stacks.cluster?.chartValues ?? stacks.existing?.chartValues ?? {};
  const yaml = buildApp({
    namespace: stacks.settings.namespace,
    releaseName: 'ccproxy',
    overrides: values,
  }).app.synthYaml();
  const existing = stacks.settings.profile === 'existing-cluster';
  return estimate(templates, renderedPods(yaml), {
    pods: existing ? 'shared-nodes' : 'fargate',
    sharedAlb: existing && stacks.settings.albGroup !== '',
  });
}

interface Manifest {
  kind?: string;
  metadata?: { name?: string };
  spec?: {
    replicas?: number;
    minReplicas?: number;
    scaleTargetRef?: { name?: string };
    template?: { spec?: { containers?: Array<{ resources?: { requests?: { cpu?: string; memory?: string } } }> } };
  };
}

/** Each Deployment's pods: its replicas, or its HPA's floor, and the sum of its containers' requests. */
export function renderedPods(yaml: string): PodSpec[] {
  const manifests = parseAllDocuments(yaml).map((d) => d.toJS() as Manifest);
  const floors = new Map(
    manifests
      .filter((m) => m.kind === 'HorizontalPodAutoscaler')
      .map((m) => [m.spec?.scaleTargetRef?.name, m.spec?.minReplicas ?? 1]),
  );
  return manifests
    .filter((m) => m.kind === 'Deployment')
    .map((m) => {
      const name = m.metadata?.name ?? '';
      const containers = m.spec?.template?.spec?.containers ?? [];
      return {
        name,
        replicas: m.spec?.replicas ?? floors.get(name) ?? 1,
        cpu: containers.reduce((sum, c) => sum + requested(c.resources?.requests?.cpu, cpuCores), 0),
        memoryMb: containers.reduce((sum, c) => sum + requested(c.resources?.requests?.memory, parseMebibytes), 0),
      };
    });
}

/** A container's request in the chart's own quantity units; none requested counts as 0. */
function requested(quantity: string | undefined, parse: (q: string) => number): number {
  return quantity === undefined ? 0 : parse(quantity);
}
