import { setTimeout as sleep } from 'node:timers/promises';

/** `process.memoryUsage()` of the target, in bytes. */
export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface InspectorSession {
  /** A full, forced garbage collection, then the target's `process.memoryUsage()`. */
  liveMemory(): Promise<MemoryUsage>;
  close(): void;
}

interface Reply {
  id?: number;
  result?: { result?: { value?: unknown } };
  error?: { message: string };
}

/**
 * Wakes a target's inspector with SIGUSR1 (it was started with `--inspect-port`, so nothing
 * listened or cost anything until now) and talks the DevTools protocol to it over its WebSocket.
 * This is how the bench forces a GC in floor, ccproxy and the peer alike (perf-anchors §5.6
 * allows it in bench mode) without a debug endpoint in any of them.
 */
export async function openInspector(pid: number, port: number): Promise<InspectorSession> {
  process.kill(pid, 'SIGUSR1');
  const socket = new WebSocket(await debuggerUrl(port));
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`inspector of ${pid}: connection failed`)), { once: true });
  });
  const pending = new Map<number, (reply: Reply) => void>();
  socket.addEventListener('message', (event) => {
    const reply = JSON.parse(String(event.data)) as Reply;
    if (reply.id !== undefined) pending.get(reply.id)?.(reply);
  });
  let nextId = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<Reply['result']>((resolve, reject) => {
      const id = (nextId += 1);
      pending.set(id, (reply) => {
        pending.delete(id);
        if (reply.error === undefined) resolve(reply.result);
        else reject(new Error(`inspector of ${pid}: ${method}: ${reply.error.message}`));
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    async liveMemory() {
      await call('HeapProfiler.collectGarbage');
      const evaluated = await call('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      });
      const value = evaluated?.result?.value;
      if (typeof value !== 'string') throw new Error(`inspector of ${pid}: no memoryUsage() in the reply`);
      return JSON.parse(value) as MemoryUsage;
    },
    close: () => socket.close(),
  };
}

/** The target's one page target, once its inspector has started listening. */
async function debuggerUrl(port: number): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const list = await fetch(`http://127.0.0.1:${port}/json/list`).then(
      (r) => r.json() as Promise<Array<{ webSocketDebuggerUrl?: string }>>,
      () => undefined,
    );
    const url = list?.[0]?.webSocketDebuggerUrl;
    if (url !== undefined) return url;
    await sleep(50);
  }
  throw new Error(`inspector on port ${port}: not listening 5 s after SIGUSR1`);
}
