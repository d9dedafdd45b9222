import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * What a benchmark reads from /proc about a process under test, without instrumenting it: the
 * protocol (perf-anchors §5.6) wants the proxies measured as they ship, so RSS and CPU come from
 * the kernel's books, not from an admin endpoint. Linux only.
 */

/** Ticks per second of /proc's CPU counters (100 on most kernels, but it is a build option). */
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in KiB (`VmRSS`); NaN once the process is gone. */
function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? Number.NaN : Number(match[1]);
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU the process has used so far, in µs (10 ms resolution at 100 ticks/s). */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total jiffies of one CPU (`/proc/stat`), to tell whether the rig's own core ran out. */
function cpuJiffies(cpu: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  const values = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((sum, v) => sum + v, 0);
  // idle and iowait are the 4th and 5th counters; the rest is work.
  return { busy: total - (values[3] ?? 0) - (values[4] ?? 0), total };
}

/**
 * Watches the hypervisor's steal time (`/proc/stat`, all CPUs): the share of the window the VM
 * wanted to run but the host ran something else. On a shared VM it is what makes two runs of
 * the same rung disagree, so rungs report it and `rerunFailed` gives a rung failed under much of it a second re-run.
 */
export function watchSteal(): { stop(): number } {
  const before = stealJiffies();
  return {
    stop() {
      const after = stealJiffies();
      return (after.steal - before.steal) / Math.max(1, after.total - before.total);
    },
  };
}

/** Past this much steal (2 % of the machine) a failed rung says more about the host than the target. */
const heavySteal = 0.02;

/**
 * Runs a rung and, if it failed, runs it again: once, or twice while the host steals heavily. A
 * ceiling must fail twice in a row, so one host hiccup does not end a ladder; the last run is the
 * one reported, with how many runs were discarded. Every side gets the same rule.
 */
export async function rerunFailed<R extends { steal: number }>(
  run: () => Promise<R>,
  failed: (rung: R) => boolean,
): Promise<R & { reruns: number }> {
  let rung = await run();
  let done = 0;
  while (failed(rung) && (done === 0 || (done === 1 && rung.steal > heavySteal))) {
    done += 1;
    rung = await run();
  }
  return { ...rung, reruns: done };
}

function stealJiffies(): { steal: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('cpu '));
  const values = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  return { steal: values[7] ?? 0, total: values.slice(0, 8).reduce((sum, v) => sum + v, 0) };
}

/** The kernel's count of connections dropped because a listener's accept queue was full (all sockets). */
function listenDrops(): number {
  try {
    const [names, values] = readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'));
    const index = names?.split(' ').indexOf('ListenDrops') ?? -1;
    return Number(values?.split(' ')[index]);
  } catch {
    return Number.NaN;
  }
}

/** Samples a process's RSS at `hz` until stopped; `stop()` returns the peak seen (KiB). */
function sampleRss(pid: number, hz = 10): { stop(): number } {
  let peak = rssKiB(pid);
  const timer = setInterval(() => {
    const now = rssKiB(pid);
    if (now > peak || Number.isNaN(peak)) peak = now;
  }, 1000 / hz);
  return {
    stop() {
      clearInterval(timer);
      const last = rssKiB(pid);
      return last > peak ? last : peak;
    },
  };
}

export interface WindowUsage {
  wallMs: number;
  /** NaN without a pid. */
  rssBeforeKiB: number;
  rssPeakKiB: number;
  targetCpuMicros: number;
  /** This process (the load driver), % of one core. */
  driverCpuPercent: number;
  /** All work on `rigCpu`, whoever did it, %. */
  rigCpuPercent: number;
  /** SYNs dropped on a full accept queue, box-wide: each costs its client a 1 s retransmit. */
  listenDrops: number;
  /** Share of the machine's CPU time the hypervisor stole over the window, 0–1. */
  steal: number;
}

/**
 * Opens a measurement window: the target's RSS (sampled at 10 Hz) and CPU, the driver's own CPU
 * and the rig core's load, from now until `stop()`.
 */
export function watchWindow(pid: number | undefined, rigCpu: number): { stop(): WindowUsage } {
  const rssBeforeKiB = pid === undefined ? Number.NaN : rssKiB(pid);
  const rss = pid === undefined ? undefined : sampleRss(pid);
  const cpuBefore = pid === undefined ? Number.NaN : cpuMicros(pid);
  const driverBefore = process.cpuUsage();
  const rigBefore = cpuJiffies(rigCpu);
  const dropsBefore = listenDrops();
  const steal = watchSteal();
  const start = performance.now();
  return {
    stop() {
      const wallMs = performance.now() - start;
      const driver = process.cpuUsage(driverBefore);
      const rig = cpuJiffies(rigCpu);
      return {
        wallMs,
        rssBeforeKiB,
        rssPeakKiB: rss?.stop() ?? Number.NaN,
        targetCpuMicros: pid === undefined ? Number.NaN : cpuMicros(pid) - cpuBefore,
        driverCpuPercent: (driver.user + driver.system) / 10 / wallMs,
        rigCpuPercent: (100 * (rig.busy - rigBefore.busy)) / Math.max(1, rig.total - rigBefore.total),
        listenDrops: listenDrops() - dropsBefore,
        steal: steal.stop(),
      };
    },
  };
}
