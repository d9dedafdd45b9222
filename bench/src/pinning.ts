import { execFileSync } from 'node:child_process';

/**
 * The topology of the perf-anchors protocol (§5.1) on two cores, for the capacity scenarios: the
 * load driver and the mock upstreams on CPU 0, the proxy under test alone on CPU 1 — a one-core
 * deployment slot. Latency scenarios run unpinned: on this VM a wake-up across cores costs more
 * than the proxy does, and the protocol allows an unpinned pass for headline latencies.
 */
export const driverCpu = 0;
export const proxyCpu = 1;

/** Sets the CPU affinity of every thread of a process and of its children (`cpus` e.g. "1" or "0,1"). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  for (const child of childrenOf(pid)) pin(child, cpus);
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

/**
 * Runs `work` with `proxyPid` alone on CPU 1 and the driver and every other process of the run
 * (the mock upstreams, the idle proxies, and PostgreSQL, which has its own host in production)
 * on CPU 0, then unpins all.
 */
export async function pinnedFor<T>(
  proxyPid: number | undefined,
  allPids: number[],
  work: () => Promise<T>,
): Promise<T> {
  const rig = [process.pid, ...allPids.filter((pid) => pid !== proxyPid)];
  for (const pid of rig) pin(pid, String(driverCpu));
  if (proxyPid !== undefined) pin(proxyPid, String(proxyCpu));
  try {
    return await work();
  } finally {
    for (const pid of [...rig, ...(proxyPid === undefined ? [] : [proxyPid])]) pin(pid, `${driverCpu},${proxyCpu}`);
  }
}
