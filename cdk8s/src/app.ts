import { readFileSync } from 'node:fs';
import { App } from 'cdk8s';
import { Value } from 'typebox/value';
import { parse } from 'yaml';
import { ClaudeCodeProxyChart } from './workloads.ts';
import { valuesSchema, type ChartValues } from './values.ts';

const chartDir = new URL('../../charts/claude-code-proxy/', import.meta.url);

/** Overrides as Helm takes them: objects merge key by key, everything else replaces. */
export type ValuesOverrides = { readonly [key: string]: unknown };

function merge(base: unknown, override: unknown): unknown {
  if (!isObject(base) || !isObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = merge(base[key], value);
  return out;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The chart's values.yaml with `overrides` merged over it, validated with the schema Helm uses:
 * the cdk8s app has the same defaults and refuses the same mistakes as `helm install`.
 */
export function resolveValues(overrides: ValuesOverrides = {}): ChartValues {
  const defaults: unknown = parse(readFileSync(new URL('values.yaml', chartDir), 'utf8'));
  const values = merge(defaults, overrides);
  const problems = [...Value.Errors(valuesSchema, values)].map(
    (error) => `${error.instancePath || '/'}: ${error.message}`,
  );
  if (problems.length > 0)
    throw new Error(`invalid claude-code-proxy values:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return values as ChartValues;
}

/** The chart's appVersion: the image tag when values.image.tag is empty, as in Helm. */
export function chartAppVersion(): string {
  const chart = parse(readFileSync(new URL('Chart.yaml', chartDir), 'utf8')) as { appVersion: string };
  return chart.appVersion;
}

export interface SynthOptions {
  readonly overrides?: ValuesOverrides;
  readonly namespace?: string;
  readonly releaseName?: string;
}

/** An App holding the workloads chart, ready to `synthYaml()` or to hand to aws-eks `addCdk8sChart`. */
export function buildApp(options: SynthOptions = {}): { app: App; chart: ClaudeCodeProxyChart } {
  const app = new App();
  const chart = new ClaudeCodeProxyChart(app, 'claude-code-proxy', {
    values: resolveValues(options.overrides),
    appVersion: chartAppVersion(),
    namespace: options.namespace ?? 'ccproxy',
    releaseName: options.releaseName ?? 'ccproxy',
  });
  return { app, chart };
}
