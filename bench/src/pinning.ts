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

/**
 * Lowest CPU priority (nice 19) for a process and the children it forks from now on: PostgreSQL
 * shares CPU 0 with the driver and the mock upstream, and there its inserts of ccproxy's usage
 * records (2,500 a second at the top rungs) delayed the driver and the mock's timers, which read
 * as ccproxy's latency: at 2,500 and 3,000 req/s ccproxy's p99 was 47.0 and 51.1 ms against 30.8
 * and 34.2 ms for the same proxy unmetered. Reniced, 35.2 and 34.0 ms against 32.7 and 33.3
 * (docs/performance.md). The inserts still happen, in the rig's idle time; in production the
 * database has its own host.
 */
export function lowestPriority(pid: number): void {
  execFileSync('renice', ['-n', '19', '-p', String(pid)], { stdio: 'ignore' });
  for (const child of childrenOf(pid)) lowestPriority(child);
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
