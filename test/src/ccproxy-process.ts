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
/** Ports this process handed out: the kernel may offer a just-released one again. */
const handedOut = new Set<number>();

/**
 * A loopback port nothing listens on, never one this process handed out before: a test that took
 * one for its admin and then started a proxy got the same port for both (seen in CI: EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (address === null || typeof address === 'string') throw new Error('no port');
    if (handedOut.has(address.port)) continue;
    handedOut.add(address.port);
    return address.port;
  }
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
  // A chunk may end inside a line (under load a banner line arrives in two reads): each stream
  // keeps its unfinished line until the rest comes.
  const collector = () => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        output.push(line);
        const match = /export ANTHROPIC_BASE_URL=(\S+)/.exec(line);
        if (match?.[1] !== undefined) baseUrls.push(match[1]);
      }
    };
  };
  child.stdout?.on('data', collector());
  child.stderr?.on('data', collector());
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
  // `ccproxy local` prints its banner (keys, then the admin UI) just after it starts listening:
  // wait for its last part, so a test never reads the banner before it is written.
  if (args[0] === 'local') await bannerPrinted(output, exited);
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

async function bannerPrinted(output: readonly string[], exited: Promise<number | null>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 30_000;
  while (!output.some((line) => line.includes('admin UI: '))) {
    if (gone) throw new Error(`ccproxy local exited before printing its banner:\n${output.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`ccproxy local printed no banner in 30 s:\n${output.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
