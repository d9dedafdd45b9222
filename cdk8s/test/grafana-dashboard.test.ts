import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, ensureHelmBinary, startCcproxy, type CcproxyProcess } from '@ccproxy/test-harness';
import { find, helmTemplate, valuesSets } from './chart-values.ts';

interface Dashboard {
  title: string;
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; query: unknown }> };
}

/** PromQL syntax errors, by Prometheus's own grammar. */
function syntaxErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`at ${node.from}: ${expr.slice(Math.max(0, node.from - 10), node.to + 10)}`);
    },
  });
  return errors;
}

/** Series a query names that are not in `exported` (histograms count with _bucket/_sum/_count). */
function unknownSeries(expr: string, exported: ReadonlySet<string>): string[] {
  return (expr.match(/ccproxy_[a-z_]+/g) ?? []).filter((name) => !exported.has(name));
}

let proxy: CcproxyProcess;
let exported: Set<string>;
beforeAll(async () => {
  await ensureHelmBinary();
  // What a real proxy exports: the `# TYPE` lines of its /metrics (every metric, set or not).
  proxy = await startCcproxy(['proxy'], {
    DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'dashboard'),
    CCPROXY_KEY_HASHER_SECRET: 'dashboard-test-hasher-secret-0123456789abcdef',
    CCPROXY_LOG_LEVEL: 'warn',
  });
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  exported = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exported.add(name ?? '');
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${name}${suffix}`);
  }
}, 20 * 60_000);
afterAll(async () => {
  await proxy?.stop();
});

describe("the chart's Grafana dashboard", () => {
  it('ships as a ConfigMap labelled for Grafana, over the CloudWatch dashboard’s signals, naming only exported series', async () => {
    const objects = await helmTemplate(valuesSets.everything);
    const configMap = find(objects, 'ConfigMap', 'ccp-dashboard');
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    const dashboard = JSON.parse(
      (configMap.data as Record<string, string>)['claude-code-proxy.json'] ?? '',
    ) as Dashboard;
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const signal of [
      /Requests/,
      /first byte/,
      /Errors by type/,
      /Failovers/,
      /breakers/,
      /Tokens by provider/,
      /Spend by provider/,
    ])
      expect(titles).toMatch(signal);
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list
        .map((v) => (v.query as { query?: string } | undefined)?.query)
        .filter((q): q is string => typeof q === 'string' && q.includes('ccproxy_'))
        .map((q) => ({ where: 'variables', expr: q.replace(/^label_values\((.+), \w+\)$/, '$1') })),
    ];
    expect(queries.length).toBeGreaterThanOrEqual(8);
    expect(exported.size).toBeGreaterThan(8);
    for (const { where, expr } of queries) {
      expect(syntaxErrors(expr.replaceAll('$namespace', 'x')), where).toEqual([]);
      expect(unknownSeries(expr, exported), where).toEqual([]);
    }
  });

  it('the checks find a misspelt series and broken PromQL (so the check above is not vacuous)', () => {
    expect(unknownSeries('sum(rate(ccproxy_request_total[5m]))', exported)).toEqual(['ccproxy_request_total']);
    expect(syntaxErrors('sum(rate(ccproxy_requests_total[5m])')).not.toEqual([]);
  });

  it('is off by default', async () => {
    const objects = await helmTemplate(valuesSets.defaults);
    expect(objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
  });
});
