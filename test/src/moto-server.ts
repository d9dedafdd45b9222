import { execFile as execFileCallback, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { freePort } from './ccproxy-process.ts';
import { ensurePythonVenv } from './python-venv.ts';
import { waitReady } from './wait-ready.ts';

const execFile = promisify(execFileCallback);

/** Pinned so every machine mocks the same AWS behaviour; bump deliberately. */
export const MOTO_VERSION = '5.2.5';
/**
 * Moto's core plus the Flask its server needs, not `moto[server]`: that extra pulls in
 * cfn-lint, sympy, docker and more for services we don't mock, and takes ~2 min to install
 * against ~20 s for this set. KMS, CloudWatch and Secrets Manager need nothing more.
 */
const REQUIREMENTS = [`moto==${MOTO_VERSION}`, 'flask==3.1.3', 'flask-cors==6.0.5'];

export interface MotoServer {
  /** Endpoint for the SDK clients' `endpoint` option (or `AWS_ENDPOINT_URL_*`); every service shares it. */
  readonly url: string;
  readonly port: number;
  /** Forgets every resource (keys, metrics, secrets) without a restart. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real `moto` server (AWS service mocks, from PyPI) on a free loopback port, so tests drive
 * KMS, CloudWatch or Secrets Manager with the real AWS SDK v3 clients. Any key and secret are
 * accepted; the account is moto's default 123456789012.
 */
export async function startMotoServer(options: { readyTimeoutMs?: number } = {}): Promise<MotoServer> {
  const python = await findPython();
  const port = await freePort();
  // `python -m moto.server` rather than the `moto_server` script: the script's shebang holds the
  // venv's build path, which our rename-into-place install invalidates.
  const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => void output.push(chunk.toString());
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady({
      name: 'moto',
      url: `${url}/moto-api/data.json`,
      exited,
      output: () => output.join(''),
      timeoutMs: options.readyTimeoutMs ?? 30_000,
      intervalMs: 100,
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    port,
    async reset() {
      const response = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset answered ${response.status}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      // Werkzeug can hang on open keep-alive connections; don't let a test run wait on it.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A Python that can `import moto.server` at the pinned version: the system one when it already
 * has it (e.g. a CI image), else a venv in the user cache, built on first use. The cache lives
 * outside the repo so fresh clones and `git clean` don't pay the install again.
 */
async function findPython(): Promise<string> {
  if (await hasMoto('python3')) return 'python3';
  // Named by the moto version: change it with REQUIREMENTS too, or old caches are reused.
  const python = await ensurePythonVenv({
    name: `moto-venv-${MOTO_VERSION}`,
    requirements: REQUIREMENTS,
    expectedSeconds: 25,
  });
  if (!(await hasMoto(python)))
    throw new Error(`installed moto ${MOTO_VERSION} into ${python} but cannot import moto.server`);
  return python;
}

async function hasMoto(python: string): Promise<boolean> {
  const probe = 'import moto, moto.server; print(moto.__version__)';
  return execFile(python, ['-c', probe]).then(
    ({ stdout }) => stdout.trim() === MOTO_VERSION,
    () => false,
  );
}
