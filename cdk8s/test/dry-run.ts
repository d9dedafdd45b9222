import type { KubeConfig } from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { apply, kubeRequest } from '../../operator/test/kube-fixture.ts';
import { prometheusOperatorCrds } from './prometheus-crds.ts';

/** A rendered manifest object, as far as the tests look into it. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function parseManifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/**
 * REST paths from the API server's own discovery, not a hand-kept plural table: a kind the
 * server does not serve (say, a ServiceMonitor without its CRD) fails loudly here.
 */
async function discover(config: KubeConfig, apiVersion: string): Promise<ApiResource[]> {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const response = await kubeRequest(config, 'GET', base);
  if (response.status !== 200) throw new Error(`discovery of ${apiVersion}: ${response.status} ${response.body}`);
  return (JSON.parse(response.body) as { resources: ApiResource[] }).resources.filter((r) => !r.name.includes('/'));
}

/**
 * Server-side apply with `dryRun=All` of every object: the API server runs defaulting, schema
 * validation (built-in kinds and CRDs, CEL included) and admission, and persists nothing.
 * `fieldValidation=Strict` turns unknown or duplicate fields (a misplaced key in a template)
 * into refusals instead of warnings.
 * Returns one line per refused object, so a test reports them all at once.
 */
export async function dryRunApply(
  config: KubeConfig,
  objects: readonly Manifest[],
  fieldManager: string,
): Promise<string[]> {
  const discovery = new Map<string, Promise<ApiResource[]>>();
  const refused: string[] = [];
  for (const object of objects) {
    if (!discovery.has(object.apiVersion)) discovery.set(object.apiVersion, discover(config, object.apiVersion));
    const resource = (await discovery.get(object.apiVersion))?.find((r) => r.kind === object.kind);
    if (resource === undefined) {
      refused.push(`${object.kind}/${object.metadata.name}: ${object.apiVersion} ${object.kind} is not served`);
      continue;
    }
    const base = object.apiVersion.includes('/') ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
    const scope = resource.namespaced ? `/namespaces/${object.metadata.namespace ?? 'default'}` : '';
    const path = `${base}${scope}/${resource.name}/${object.metadata.name}?dryRun=All&fieldValidation=Strict&fieldManager=${fieldManager}&force=true`;
    const response = await kubeRequest(config, 'PATCH', path, JSON.stringify(object), 'application/apply-patch+yaml');
    if (response.status >= 300)
      refused.push(`${object.kind}/${object.metadata.name}: ${response.status} ${response.body}`);
  }
  return refused;
}

/**
 * Installs the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, generated from its
 * Go API types with their full schemas (see prometheus-crds.ts), so the dry-run checks those
 * objects' specs as a cluster with the Prometheus Operator would.
 */
export async function installMonitoringCrds(config: KubeConfig): Promise<void> {
  const crds = await Promise.all(
    (await prometheusOperatorCrds()).map(async (file) => parseManifests(await readFile(file, 'utf8'))),
  );
  await apply(config, crds.flat());
  // Served only once Established; discovery lags a moment behind.
  for (let i = 0; ; i += 1) {
    const resources = await discover(config, 'monitoring.coreos.com/v1').catch(() => []);
    if (resources.some((r) => r.kind === 'ServiceMonitor') && resources.some((r) => r.kind === 'PrometheusRule'))
      return;
    if (i > 100) throw new Error('monitoring.coreos.com/v1 CRDs not served');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
