import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
export const benchKey = 'ak_bench_key_0123456789abcdefghijklmnopqrstu';
/** Same user, three routings: Plan only, Bedrock only, Plan with failover. */
export const bedrockKey = 'ak_bench_bedrock_0123456789abcdefghijklmnop';
export const failoverKey = 'ak_bench_failover_0123456789abcdefghijklmn';

const children = new Set<ChildProcess>();
/** Children never outlive the benchmark, whatever ends it. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

export async function startUpstream(script = 'bench/src/upstream-server.ts'): Promise<{ url: string }> {
  const child = spawn(process.execPath, [join(repo, script)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const [line] = (await once(child.stdout ?? child, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${line.toString().trim()}` };
}

/** The real product (`ccproxy local`, the `npm start` path) with a known key, logging at info to /dev/null. */
const keyDocs = (name: string, key: string, routing: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: bench }\n` +
  `spec: { userRef: { name: bench }, secretName: ${name}-key, routing: ${routing}, bedrock: { region: us-east-1, model: anthropic.claude-bench } }\n---\n` +
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}-key, namespace: bench }\nstringData: { accessKey: ${key} }\n---\n` +
  `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: ${name}-bedrock, namespace: bench }\nspec: { accessKeyRef: { name: ${name} }, secretRef: { name: bench-bedrock, key: apiKey } }\n---\n`;

export async function startProxy(upstreamUrl: string, extraEnv: Record<string, string> = {}): Promise<{ url: string; pid: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-bench-'));
  await writeFile(
    join(dir, 'bench.yaml'),
    `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: bench, namespace: bench }\nspec: {}\n---\n` +
      keyDocs('bench', benchKey, 'PlanOnly') + keyDocs('bedrock', bedrockKey, 'BedrockOnly') + keyDocs('failover', failoverKey, 'PlanWithFailover') +
      `apiVersion: v1\nkind: Secret\nmetadata: { name: bench-bedrock, namespace: bench }\nstringData: { apiKey: bench-bedrock-api-key }\n`,
  );
  const port = await freePort();
  const child = spawn(process.execPath, [join(repo, 'cli/src/main.ts'), 'local', '--manifests', dir], {
    env: { PATH: process.env.PATH ?? '', CCPROXY_DATA_DIR: join(dir, '.data'), PORT: String(port), CCPROXY_ADMIN_PORT: String(await freePort()), ANTHROPIC_UPSTREAM_URL: upstreamUrl, ...extraEnv },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i += 1) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return { url, pid: child.pid ?? 0 };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('proxy did not become ready');
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
