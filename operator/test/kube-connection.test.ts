import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeApiError, KubeClient, loadKubeConnection } from '@ccproxy/operator/kube';
import { ensureNamespace, adminConfig, uniqueName } from './kube-fixture.ts';

/**
 * `ccproxy operator` reads its credentials itself (kube-connection.ts) so that it never loads
 * @kubernetes/client-node (82–90 MB of RSS): each way a cluster hands them out is tried against
 * the real API server — a kubeconfig with inline data, one with files beside it, a pod's service
 * account — and a kubeconfig only client-node understands (an exec plugin, as EKS's) still works,
 * by loading it. A child process proves which of them load client-node.
 */
interface Kubeconfig {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
}

let dir: string;
let namespace: string;
const adminYaml = () => inject('kubeconfig');
const file = parse(inject('kubeconfig')) as Kubeconfig;
const server = String(file.clusters[0]?.cluster.server);
const caPem = Buffer.from(String(file.clusters[0]?.cluster['certificate-authority-data']), 'base64').toString();
const token = String(file.users[0]?.user.token);

/** The admin kubeconfig with its cluster and user fields replaced. */
function variant(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const copy = parse(adminYaml()) as Kubeconfig;
  copy.clusters[0] = { name: copy.clusters[0]?.name ?? 'test', cluster: { server, ...cluster } };
  copy.users[0] = { name: copy.users[0]?.name ?? 'test', user };
  return stringify(copy);
}

async function works(client: KubeClient): Promise<void> {
  expect(await client.readSecret(namespace, 'absent')).toBeUndefined();
  expect((await client.list('AccessKey')).items).toEqual([]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ccproxy-kube-connection-'));
  namespace = uniqueName('conn');
  await ensureNamespace(adminConfig(), namespace);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the operator reads its own credentials', () => {
  it('from a kubeconfig with inline data; a wrong token is the API server 401, not a crash', async () => {
    const path = join(dir, 'inline');
    await writeFile(path, adminYaml());
    await works(new KubeClient(await loadKubeConnection({ KUBECONFIG: path }), namespace));

    await writeFile(
      path,
      variant({ 'certificate-authority-data': Buffer.from(caPem).toString('base64') }, { token: 'wrong' }),
    );
    const refused = await new KubeClient(await loadKubeConnection({ KUBECONFIG: path }), namespace)
      .list('AccessKey')
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(KubeApiError);
    expect((refused as KubeApiError).statusCode).toBe(401);
    expect(String(refused)).not.toContain('wrong');
  });

  it('from a kubeconfig naming files beside it (CA and token file, relative paths)', async () => {
    const sub = join(dir, 'files');
    await rm(sub, { recursive: true, force: true });
    await mkdir(sub);
    await writeFile(join(sub, 'ca.crt'), caPem);
    await writeFile(join(sub, 'token'), `${token}\n`);
    await writeFile(join(sub, 'config'), variant({ 'certificate-authority': 'ca.crt' }, { tokenFile: 'token' }));
    await works(new KubeClient(await loadKubeConnection({ KUBECONFIG: join(sub, 'config') }), namespace));
  });

  it("in a pod: the service account's token and CA, found from KUBERNETES_SERVICE_HOST/PORT", async () => {
    const account = join(dir, 'serviceaccount');
    await mkdir(account, { recursive: true });
    await writeFile(join(account, 'ca.crt'), caPem);
    await writeFile(join(account, 'token'), token);
    const url = new URL(server);
    const env = { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port, HOME: dir };
    const connection = await loadKubeConnection(env, account);
    expect(connection.server).toBe(`https://${url.hostname}:${url.port}`);
    await works(new KubeClient(connection, namespace));
  });

  it('a CA that did not sign the server is refused (TLS is verified)', async () => {
    const path = join(dir, 'wrong-ca');
    // A public root from Node's bundle: valid, and not the one that signed the API server's certificate.
    const otherCa = rootCertificates[0] ?? '';
    await writeFile(
      path,
      variant({ 'certificate-authority-data': Buffer.from(otherCa).toString('base64') }, { token }),
    );
    const refused = await new KubeClient(await loadKubeConnection({ KUBECONFIG: path }), namespace)
      .list('AccessKey')
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(KubeApiError);
    expect(String((refused as Error & { code?: string }).code)).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('an exec plugin (as `aws eks get-token`) is left to client-node, which is loaded then and only then', async () => {
    const plugin = join(dir, 'plugin.mjs');
    await writeFile(
      plugin,
      `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: ${JSON.stringify(token)} } }));\n`,
    );
    const exec = join(dir, 'exec');
    await writeFile(
      exec,
      variant(
        { 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
        {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: [plugin],
            interactiveMode: 'Never',
          },
        },
      ),
    );
    await works(new KubeClient(await loadKubeConnection({ KUBECONFIG: exec }), namespace));

    const inline = join(dir, 'inline');
    await writeFile(inline, adminYaml());
    expect(await clientNodeLoads(inline)).toEqual({ listed: true, clientNode: false });
    expect(await clientNodeLoads(exec)).toEqual({ listed: true, clientNode: true });
  });
});

/** In a fresh process: builds the operator's client from KUBECONFIG, lists, and says whether client-node was loaded. */
async function clientNodeLoads(kubeconfig: string): Promise<{ listed: boolean; clientNode: boolean }> {
  const script = `
    import { registerHooks } from 'node:module';
    let clientNode = false;
    registerHooks({ resolve(specifier, context, next) {
      const resolved = next(specifier, context);
      if (resolved.url.includes('/@kubernetes/client-node/')) clientNode = true;
      return resolved;
    } });
    const { KubeClient } = await import(process.env.OPERATOR_KUBE);
    const client = await KubeClient.fromEnvironment(process.env.NAMESPACE);
    const { items } = await client.list('AccessKey');
    console.log(JSON.stringify({ listed: Array.isArray(items), clientNode }));
    process.exit(0);
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig,
      NAMESPACE: namespace,
      OPERATOR_KUBE: new URL('../src/kube/index.ts', import.meta.url).href,
    },
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { listed: boolean; clientNode: boolean };
}
