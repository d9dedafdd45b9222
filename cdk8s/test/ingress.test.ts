import { beforeAll, describe, expect, it } from 'vitest';
import { ensureHelmBinary } from '@ccproxy/test-harness';
import { buildApp, type ValuesOverrides } from '../src/app.ts';
import { find, helmTemplate, valuesSets } from './chart-values.ts';
import { parseManifests, type Manifest } from './dry-run.ts';

/**
 * What the Ingress exposes, read the way an Ingress controller reads it (Kubernetes `Prefix`
 * matching by path element, the longest match wins; a rule without a host matches any host;
 * rules in order): the proxy's access-key routes and, on a host of its own and only from the
 * configured ranges, the admin — never the proxy's /metrics (a series per key) or health routes.
 */
interface Rule {
  host?: string;
  http: { paths: Array<{ path: string; backend: { service: { name: string } } }> };
}

const elements = (path: string) => path.split('/').filter((part) => part !== '');

/** The Service an Ingress sends `host` + `path` to, or undefined (the controller's default 404). */
function backendFor(ingress: Manifest, host: string, path: string): string | undefined {
  const rules = (ingress.spec as { rules: Rule[] }).rules;
  for (const rule of rules.filter((r) => r.host === undefined || r.host === host)) {
    const matches = rule.http.paths.filter((candidate) => {
      const prefix = elements(candidate.path);
      return prefix.every((part, index) => elements(path)[index] === part);
    });
    const longest = matches.sort((a, b) => elements(b.path).length - elements(a.path).length)[0];
    if (longest !== undefined) return longest.backend.service.name;
  }
  return undefined;
}

const renderings: Record<string, (values: ValuesOverrides) => Promise<Manifest[]>> = {
  helm: (values) => helmTemplate(values),
  cdk8s: async (values) =>
    parseManifests(buildApp({ overrides: values, namespace: 'ccproxy', releaseName: 'ccp' }).app.synthYaml()),
};

beforeAll(() => ensureHelmBinary(), 20 * 60_000);

describe.each(Object.entries(renderings))('the Ingress rendered by %s', (_tool, render) => {
  it('routes only /ak/… to the proxy: its /metrics, health routes and any other path are not public', async () => {
    const ingress = find(await render(valuesSets.everything), 'Ingress', 'ccp');
    const proxyHost = 'ccproxy.example.com';
    expect(backendFor(ingress, proxyHost, '/ak/ak_abc/v1/messages')).toBe('ccp-proxy');
    expect(backendFor(ingress, proxyHost, '/ak/ak_abc/v1/messages/count_tokens')).toBe('ccp-proxy');
    for (const hidden of ['/metrics', '/healthz', '/readyz', '/', '/akx', '/admin/api/users', '/v1/messages'])
      expect(backendFor(ingress, proxyHost, hidden), hidden).toBeUndefined();
  });

  it('serves the admin UI and API on its own host, from the configured ranges only', async () => {
    const ingress = find(await render(valuesSets.everything), 'Ingress', 'ccp');
    const adminHost = 'ccproxy-admin.example.com';
    for (const path of ['/', '/assets/index-abc123.js', '/admin/api/users', '/admin/auth/login', '/admin/openapi.json'])
      expect(backendFor(ingress, adminHost, path), path).toBe('ccp-admin');
    // The ALB matches the rule's backend by the Service name in the conditions annotation.
    expect(
      JSON.parse(ingress.metadata.annotations?.['alb.ingress.kubernetes.io/conditions.ccp-admin'] ?? 'null'),
    ).toEqual([{ field: 'source-ip', sourceIpConfig: { values: ['10.0.0.0/8', '192.168.0.0/16'] } }]);
    expect((ingress.spec as { tls: Array<{ hosts: string[] }> }).tls[0]?.hosts).toEqual([
      'ccproxy.example.com',
      adminHost,
    ]);
  });

  it('keeps the admin off the Ingress without an admin host', async () => {
    const values = { ...valuesSets.everything, ingress: { ...valuesSets.everything.ingress, adminHost: '' } };
    const ingress = find(await render(values), 'Ingress', 'ccp');
    const backends = (ingress.spec as { rules: Rule[] }).rules.flatMap((r) => r.http.paths.map((p) => p.backend));
    expect(backends.map((b) => b.service.name)).toEqual(['ccp-proxy']);
    expect(ingress.metadata.annotations?.['alb.ingress.kubernetes.io/conditions.ccp-admin']).toBeUndefined();
  });

  it("drains the proxy's ALB target as long as a proxy pod may finish its streams", async () => {
    for (const grace of [600, 1800]) {
      const values = {
        ...valuesSets.everything,
        proxy: { ...valuesSets.everything.proxy, terminationGracePeriodSeconds: grace },
      };
      const manifests = await render(values);
      const pod = find(manifests, 'Deployment', 'ccp-proxy').spec as {
        template: { spec: { terminationGracePeriodSeconds: number } };
      };
      expect(pod.template.spec.terminationGracePeriodSeconds).toBe(grace);
      const service = find(manifests, 'Service', 'ccp-proxy');
      expect(service.metadata.annotations?.['alb.ingress.kubernetes.io/target-group-attributes']).toBe(
        `deregistration_delay.timeout_seconds=${grace}`,
      );
    }
  });

  it('refuses an admin host open to every address', async () => {
    const values = {
      ...valuesSets.everything,
      ingress: { ...valuesSets.everything.ingress, adminSourceRanges: [] as string[] },
    };
    await expect(render(values)).rejects.toThrow(/adminHost needs ingress.adminSourceRanges/);
  });
});
