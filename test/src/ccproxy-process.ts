import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitReady } from './wait-ready.ts';

const mainScript = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

export interface CcproxyProcess {
  readonly url: string;
  readonly port: number;
  /** Every line the process wrote (stdout and stderr), for assertions on logs. */
  readonly output: string[];
  /** `ANTHROPIC_BASE_URL` values printed by `ccproxy local`'s start banner. */
  readonly baseUrls: string[];
  readonly child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A free loopback port (bound then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Starts the real `ccproxy` command (the same entry point `npm start` uses) as a child process
 * on the pinned Node, and waits until `/readyz` answers 200.
 */
export async function startCcproxy(
  args: string[],
  env: Record<string, string>,
  options: { readyTimeoutMs?: number } = {},
): Promise<CcproxyProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const adminPort = Number(env.CCPROXY_ADMIN_PORT ?? (await freePort()));
  const child = spawn(process.execPath, [mainScript, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      CCPROXY_LOG_LEVEL: 'info',
      ...env,
      PORT: String(port),
      CCPROXY_ADMIN_PORT: String(adminPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const baseUrls: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue;
      output.push(line);
      const match = /export ANTHROPIC_BASE_URL=(\S+)/.exec(line);
      if (match?.[1] !== undefined) baseUrls.push(match[1]);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  await waitReady({
    name: 'ccproxy',
    url: `${url}/readyz`,
    exited,
    output: () => output.join('\n'),
    timeoutMs: options.readyTimeoutMs ?? 30_000,
    intervalMs: 50,
  });
  return {
    url,
    port,
    output,
    baseUrls,
    child,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
