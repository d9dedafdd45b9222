import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { longStep } from './progress.ts';

/**
 * Runs `body` holding a lock file with the owner's pid, so parallel test runs build a cached
 * tool once; a dead owner's lock is taken over rather than waited on forever.
 */
export async function withLock<T>(path: string, what: string, body: () => Promise<T>): Promise<T> {
  if (!(await tryLock(path)))
    await longStep(
      `waiting for another test run to finish ${what} (lock ${path})`,
      { expectedSeconds: 600 },
      async () => {
        while (!(await tryLock(path))) await sleep(1_000);
      },
    );
  try {
    return await body();
  } finally {
    await rm(path, { force: true });
  }
}

/** Takes the lock if it is free or its owner is dead; false while a live process holds it. */
async function tryLock(path: string): Promise<boolean> {
  try {
    await writeFile(path, String(process.pid), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = Number(await readFile(path, 'utf8').catch(() => ''));
    if (owner > 0 && !isAlive(owner)) await rm(path, { force: true });
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
