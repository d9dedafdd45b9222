import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { openInspector } from '../src/inspector-session.ts';
import { freePort } from '../src/processes.ts';

describe('openInspector', () => {
  const children: Array<ReturnType<typeof spawn>> = [];
  afterAll(() => children.forEach((child) => child.kill('SIGKILL')));

  it('wakes a sleeping inspector with SIGUSR1, forces a GC and reads the live heap', async () => {
    const port = await freePort();
    // The child holds 8 MiB of Buffers it can reach and drops 64 MiB of objects it cannot.
    const script = `globalThis.kept = Array.from({ length: 8 }, () => Buffer.alloc(1 << 20, 1));
      let junk = Array.from({ length: 1 << 20 }, (_, i) => ({ i, s: 'x'.repeat(48) })); junk = null;
      console.log('ready'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, [`--inspect-port=127.0.0.1:${port}`, '-e', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(child);
    await once(child.stdout, 'data');
    const inspector = await openInspector(child.pid ?? 0, port);
    try {
      const usage = await inspector.liveMemory();
      expect(usage.external).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      // The unreachable array of a million objects is gone after the forced GC.
      expect(usage.heapUsed).toBeLessThan(32 * 1024 * 1024);
    } finally {
      inspector.close();
    }
  });

  it('says which process and port when nothing listens', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['-e', "process.on('SIGUSR1', () => {}); console.log('ready'); setInterval(() => {}, 1000);"],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.push(child);
    await once(child.stdout, 'data');
    await expect(openInspector(child.pid ?? 0, port)).rejects.toThrow(`inspector on port ${port}: not listening`);
  });
});
