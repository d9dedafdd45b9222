import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { shippedNodeFlags } from './shipped-node-flags.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
export const benchKey = 'ak_bench_key_0123456789abcdefghijklmnopqrstu';
/** Same user, three routings: Plan only, Bedrock only, Plan with failover. */
export const bedrockKey = 'ak_bench_bedrock_0123456789abcdefghijklmnop';
export const failoverKey = 'ak_bench_failover_0123456789abcdefghijklmn';
export const invokeKey = 'ak_bench_invoke_0123456789abcdefghijklmnopq';
/** A PlanOnly key whose user and key carry budgets and rate limits (never reached): the governance on/off pair of benchKey. */
export const governedKey = 'ak_bench_governed_0123456789abcdefghijklmn';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
/** Children (and the proxies' temp folders) never outlive the benchmark, whatever ends it. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * A bench server script as a child process (`args` after the script, `nodeArgs` before it, `env`
 * on top of the bench's own); resolves with its URL once it printed its port.
 */
export async function startUpstream(
  script = 'bench/src/upstream-server.ts',
  args: string[] = [],
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<{ url: string; pid: number }> {
  const child = spawn(process.execPath, [...nodeArgs, join(repo, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  const [line] = (await once(child.stdout ?? child, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${line.toString().trim()}`, pid: child.pid ?? 0 };
}

/** Manifests for the real product: one user, a known key per routing, a Bedrock key for each. */
const keyDocs = (name: string, key: string, routing: string, api = 'Converse') =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: bench }\n` +
  `spec: { userRef: { name: bench }, secretName: ${name}-key, routing: ${routing}, bedrock: { region: us-east-1, api: ${api}, model: anthropic.claude-bench } }\n---\n` +
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}-key, namespace: bench }\nstringData: { accessKey: ${key} }\n---\n` +
  `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: ${name}-bedrock, namespace: bench }\nspec: { accessKeyRef: { name: ${name} }, secretRef: { name: bench-bedrock, key: apiKey } }\n---\n`;

// Caps far above what a run spends: every request takes the common path (cached spend below the
// soft limit, a leased request, tokens counted locally); concurrentStreams is left out, since it
// costs a Postgres round trip per request by design (README: Budgets and rate limits).
const limits =
  '{ budget: { daily: { usd: 1000000, tokens: 1000000000000 }, monthly: { usd: 1000000 } }, ' +
  'rateLimits: { requestsPerMinute: 1000000, inputTokensPerMinute: 1000000000, outputTokensPerMinute: 1000000000 } }';
const governedDocs =
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: governed, namespace: bench }\nspec: ${limits}\n---\n` +
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: governed, namespace: bench }\n` +
  `spec: { userRef: { name: governed }, secretName: governed-key, routing: PlanOnly, ${limits.slice(2, -2)} }\n---\n` +
  `apiVersion: v1\nkind: Secret\nmetadata: { name: governed-key, namespace: bench }\nstringData: { accessKey: ${governedKey} }\n---\n`;

export interface ProxyProcess {
  url: string;
  /** SIGTERM, then wait for the exit (a `--cpu-prof` child writes its profile on the way out). */
  stop(): Promise<void>;
}

/**
 * The real product (`ccproxy local`, the `npm start` path) on the Node flags it ships with, stdout
 * to /dev/null, logging at `warn` unless `extraEnv` says otherwise; `nodeArgs` go to its node
 * after those (e.g. `--cpu-prof`).
 */
export async function startProxy(
  upstreamUrl: string,
  extraEnv: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<ProxyProcess & { pid: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-bench-'));
  tempDirs.add(dir);
  // Manifests and data side by side, as `npm start`'s defaults have them: a data folder inside the
  // watched manifests folder would turn every usage-spool write into a watch event.
  const manifests = join(dir, 'manifests');
  await mkdir(manifests);
  await writeFile(
    join(manifests, 'bench.yaml'),
    `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: bench, namespace: bench }\nspec: {}\n---\n` +
      keyDocs('bench', benchKey, 'PlanOnly') +
      keyDocs('bedrock', bedrockKey, 'BedrockOnly') +
      keyDocs('failover', failoverKey, 'PlanWithFailover') +
      keyDocs('invoke', invokeKey, 'BedrockOnly', 'InvokeModel') +
      governedDocs +
      `apiVersion: v1\nkind: Secret\nmetadata: { name: bench-bedrock, namespace: bench }\nstringData: { apiKey: bench-bedrock-api-key }\n`,
  );
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...shippedNodeFlags(), ...nodeArgs, join(repo, 'cli/src/main.ts'), 'local', '--manifests', manifests],
    {
      env: {
        PATH: process.env.PATH ?? '',
        CCPROXY_LOG_LEVEL: 'warn',
        CCPROXY_DATA_DIR: join(dir, 'data'),
        PORT: String(port),
        CCPROXY_ADMIN_PORT: String(await freePort()),
        ANTHROPIC_UPSTREAM_URL: upstreamUrl,
        ...extraEnv,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return track(child, `http://127.0.0.1:${port}`, '/readyz');
}

/** Registers a child for clean-up and resolves once `GET <url><readyPath>` answers 2xx. */
export async function track(
  child: ChildProcess,
  url: string,
  readyPath: string,
  readyTimeoutMs = 30_000,
): Promise<ProxyProcess & { pid: number }> {
  children.add(child);
  for (let i = 0; i < readyTimeoutMs / 50; i += 1) {
    if (child.exitCode !== null) throw new Error(`${url}: exited with ${child.exitCode} before it was ready`);
    if (
      await fetch(`${url}${readyPath}`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, pid: child.pid ?? 0, stop: () => stopChild(child) };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${url}: not ready after ${readyTimeoutMs / 1000} s`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
