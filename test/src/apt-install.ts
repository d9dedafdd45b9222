import { execFile as execFileCallback } from 'node:child_process';
import { promisify } from 'node:util';
import { longStep } from './progress.ts';

const execFile = promisify(execFileCallback);
// apt waits this long for another apt/dpkg to finish instead of failing on its lock.
const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
let queue: Promise<unknown> = Promise.resolve();
let updated = false;

/**
 * Installs Debian packages the test setup needs (as root), one install at a time: the global
 * setup provisions PostgreSQL and etcd side by side, and two concurrent apt-gets would fight
 * over dpkg's lock. The package lists are refreshed once per process.
 */
export function aptInstall(packages: readonly string[]): Promise<void> {
  const run = queue.then(async () => {
    if (process.getuid?.() !== 0) throw new Error(`${packages.join(', ')} missing; install with apt-get as root`);
    const options = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024 };
    await longStep(
      `apt-get install ${packages.join(' ')} (first run on this machine)`,
      { expectedSeconds: 60 },
      async () => {
        if (!updated) {
          await execFile('apt-get', [...lockWait, 'update'], options);
          updated = true;
        }
        await execFile('apt-get', [...lockWait, 'install', '-y', '--no-install-recommends', ...packages], options);
      },
    );
  });
  queue = run.catch(() => undefined);
  return run;
}
