import { parser } from '@prometheus-io/lezer-promql';
import { beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@ccproxy/core';
import { ensureHelmBinary } from '@ccproxy/test-harness';
import { operatorMetrics } from '../../operator/src/kube/operator-metrics.ts';
import { createProxyMetrics } from '../../proxy/src/metrics.ts';
import { find, helmTemplate, valuesSets } from './chart-values.ts';

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string };
}

/** PromQL syntax errors, by Prometheus's own grammar (the parser its web UI uses). */
function syntaxErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError)
        errors.push(`at ${node.from}: ${JSON.stringify(expr.slice(Math.max(0, node.from - 10), node.to + 10))}`);
    },
  });
  return errors;
}

/** Every series name the proxy and the operator export, histograms with their _bucket/_sum/_count. */
async function exportedSeries(): Promise<Set<string>> {
  const registry = createMetricsRegistry({ processMetrics: false });
  createProxyMetrics(registry);
  operatorMetrics(registry);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (metric.type.toString() === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
  }
  return names;
}

beforeAll(() => ensureHelmBinary(), 20 * 60_000);

describe("the chart's PrometheusRule", () => {
  it('has alerts that parse as PromQL and name only series the processes export', async () => {
    const rule = find(await helmTemplate(valuesSets.everything), 'PrometheusRule', 'ccp');
    const rules = (rule.spec as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(4);
    const exported = await exportedSeries();
    for (const { alert, expr, labels } of rules) {
      expect(syntaxErrors(expr), alert).toEqual([]);
      expect(['warning', 'critical']).toContain(labels.severity);
      for (const series of expr.match(/ccproxy_[a-z_]+/g) ?? [])
        expect(exported, `${alert} uses ${series}`).toContain(series);
    }
  });

  it('the PromQL check does find errors (so the check above is not vacuous)', () => {
    expect(syntaxErrors('sum(rate(ccproxy_requests_total{status_class="5xx"}[5m]) > 0.05')).not.toEqual([]);
  });
});
