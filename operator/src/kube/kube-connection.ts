import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';
import { parse } from 'yaml';

/**
 * How the operator reaches the API server: its URL, one keep-alive agent per TLS identity, and
 * each request's credentials (headers, fresh per request: service account tokens rotate).
 */
export interface KubeConnection {
  readonly server: string;
  prepare(): Promise<{ dispatcher: Dispatcher; headers: Record<string, string> }>;
}

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Tls {
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  rejectUnauthorized: boolean;
  servername?: string | undefined;
}

/**
 * Credentials the operator reads itself — the in-cluster service account, or a kubeconfig whose
 * user has a client certificate or a (file) token — so that `ccproxy operator` never loads
 * `@kubernetes/client-node`: its generated client for every API group is 82–90 MB of RSS, more
 * than the operator's whole working set at 5,000 keys (the issue's budget is 200 MB). Anything
 * else a kubeconfig can say (exec plugins such as `aws eks get-token`, auth providers, proxies,
 * several files in KUBECONFIG) loads client-node's KubeConfig, on demand, and uses it.
 */
export async function loadKubeConnection(
  env: NodeJS.ProcessEnv = process.env,
  accountDir = serviceAccountDir,
): Promise<KubeConnection> {
  const path =
    env.KUBECONFIG ?? (existsSync(join(homedir(), '.kube', 'config')) ? join(homedir(), '.kube', 'config') : undefined);
  const lean =
    path !== undefined ? (path.includes(delimiter) ? undefined : fromKubeconfigFile(path)) : inCluster(env, accountDir);
  if (lean !== undefined) return lean;
  const { KubeConfig: Config } = await import('@kubernetes/client-node');
  const config = new Config();
  if (path === undefined || path.includes(delimiter)) config.loadFromDefault();
  else config.loadFromFile(path);
  return connectionFromKubeConfig(config);
}

/** The pod's service account (client-go's rest.InClusterConfig), or undefined outside a pod. */
function inCluster(env: NodeJS.ProcessEnv, accountDir: string): KubeConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || port === undefined || !existsSync(join(accountDir, 'token'))) return undefined;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return tokenConnection(server, { ca: readFileSync(join(accountDir, 'ca.crt')), rejectUnauthorized: true }, () =>
    fileToken(join(accountDir, 'token')),
  );
}

interface KubeconfigFile {
  'current-context'?: string;
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  contexts?: { name: string; context: { cluster: string; user?: string } }[];
  users?: { name: string; user: Record<string, unknown> }[];
}

/** Fields of a kubeconfig user and cluster this reader understands; any other one needs client-node. */
const leanUserFields = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
]);
const leanClusterFields = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
]);

function fromKubeconfigFile(path: string): KubeConnection | undefined {
  const file = parse(readFileSync(path, 'utf8')) as KubeconfigFile | null;
  const context = file?.contexts?.find((entry) => entry.name === file['current-context'])?.context;
  const cluster = file?.clusters?.find((entry) => entry.name === context?.cluster)?.cluster;
  const user = file?.users?.find((entry) => entry.name === context?.user)?.user ?? {};
  if (cluster === undefined || typeof cluster.server !== 'string') return undefined;
  if (Object.keys(user).some((field) => !leanUserFields.has(field))) return undefined;
  if (Object.keys(cluster).some((field) => !leanClusterFields.has(field))) return undefined;
  const base = dirname(resolve(path));
  const material = (data: unknown, file: unknown) =>
    typeof data === 'string'
      ? Buffer.from(data, 'base64')
      : typeof file === 'string'
        ? readFileSync(resolve(base, file))
        : undefined;
  const tls: Tls = {
    ca: material(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: material(user['client-certificate-data'], user['client-certificate']),
    key: material(user['client-key-data'], user['client-key']),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
  };
  const token = user.token;
  const tokenFile = user.tokenFile;
  return tokenConnection(cluster.server, tls, async () =>
    typeof token === 'string' ? token : typeof tokenFile === 'string' ? fileToken(resolve(base, tokenFile)) : undefined,
  );
}

function tokenConnection(server: string, tls: Tls, token: () => Promise<string | undefined>): KubeConnection {
  const dispatcher = agentFor(tls);
  return {
    server,
    async prepare() {
      const bearer = await token();
      const headers: Record<string, string> = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
      return { dispatcher, headers };
    },
  };
}

const tokens = new Map<string, { value: string; readAt: number }>();

/** A token file, read again after a minute as client-go does (kubelet rotates projected tokens). */
function fileToken(path: string): Promise<string> {
  const cached = tokens.get(path);
  if (cached !== undefined && Date.now() - cached.readAt < 60_000) return Promise.resolve(cached.value);
  const value = readFileSync(path, 'utf8').trim();
  tokens.set(path, { value, readAt: Date.now() });
  return Promise.resolve(value);
}

function agentFor(tls: Tls): Agent {
  return new Agent({
    connect: {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      ...(tls.servername === undefined ? {} : { servername: tls.servername }),
      rejectUnauthorized: tls.rejectUnauthorized,
    },
    // Watches stay open for minutes; the reflector restarts a silent one itself.
    bodyTimeout: 0,
  });
}

/**
 * A connection from client-node's KubeConfig (tests, and kubeconfigs the lean reader does not
 * understand): its credentials applied per request (an exec plugin's token refreshes), one agent
 * for as long as the TLS identity stays the same (a rotated client certificate gets a new one).
 */
export function connectionFromKubeConfig(config: KubeConfig): KubeConnection {
  const server = config.getCurrentCluster()?.server;
  if (server === undefined) throw new Error('the kubeconfig names no current cluster');
  let current: { tls: Tls; agent: Agent } | undefined;
  return {
    server,
    async prepare() {
      const options: RequestOptions = { headers: {} };
      await config.applyToHTTPSOptions(options);
      const tls: Tls = {
        ca: options.ca as Tls['ca'],
        cert: options.cert as Tls['cert'],
        key: options.key as Tls['key'],
        rejectUnauthorized: options.rejectUnauthorized !== false,
        servername: options.servername ?? undefined,
      };
      if (current === undefined || !sameTls(current.tls, tls)) {
        void current?.agent.close().catch(() => undefined);
        current = { tls, agent: agentFor(tls) };
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(options.headers ?? {}))
        if (value !== undefined) headers[name.toLowerCase()] = String(value);
      return { dispatcher: current.agent, headers };
    },
  };
}

function sameTls(a: Tls, b: Tls): boolean {
  const same = (x: Tls['ca'], y: Tls['ca']) =>
    x === y || (x !== undefined && y !== undefined && Buffer.from(x).equals(Buffer.from(y)));
  return (
    same(a.ca, b.ca) &&
    same(a.cert, b.cert) &&
    same(a.key, b.key) &&
    a.rejectUnauthorized === b.rejectUnauthorized &&
    a.servername === b.servername
  );
}
