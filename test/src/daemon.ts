import { spawn, type ChildProcess } from 'node:child_process';

/** A long-running child (etcd, kube-apiserver, kube-controller-manager) whose output is kept for error messages. */
export interface Daemon {
  readonly exited: Promise<number | null>;
  /** The last output lines, for error messages. */
  tail(): string;
  /** Resolves once the output (stdout or stderr) has shown a line matching `pattern`; false if the process exits first. */
  printed(pattern: RegExp): Promise<boolean>;
  /** `signal` (SIGTERM), then SIGKILL if it has not exited within 10 s. */
  terminate(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnDaemon(
  bin: string,
  args: string[],
  children: Set<ChildProcess>,
  env: NodeJS.ProcessEnv = process.env,
): Daemon {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(child);
  let output = '';
  const watchers = new Set<{ pattern: RegExp; resolve: (seen: boolean) => void }>();
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-64 * 1024);
    for (const watcher of watchers)
      if (watcher.pattern.test(output)) {
        watchers.delete(watcher);
        watcher.resolve(true);
      }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      keep(Buffer.from(`\nspawn failed: ${error.message}\n`));
      resolve(null);
    });
    child.once('exit', (code) => resolve(code));
  }).finally(() => {
    children.delete(child);
    for (const watcher of watchers) watcher.resolve(false);
    watchers.clear();
  });
  return {
    exited,
    tail: () => output.split('\n').slice(-40).join('\n'),
    printed: (pattern) =>
      pattern.test(output) || !children.has(child)
        ? Promise.resolve(pattern.test(output))
        : new Promise((resolve) => watchers.add({ pattern, resolve })),
    async terminate(signal = 'SIGTERM') {
      if (!children.has(child)) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
