import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * What a hostile upstream does with one request: writes these raw bytes (the status line,
 * headers and body exactly as given, no framing added) and then closes cleanly (FIN) or resets.
 */
export interface HostileAnswer {
  bytes: Buffer[];
  then: 'end' | 'reset';
  /** Pause between writes (default 5 ms; 0: the next turn of the event loop). */
  delayMs?: number;
}

/**
 * An HTTP/1.1 head. It says `connection: close` (the server closes after each answer), so the
 * proxy's pool never races a closing socket with its next request.
 */
export function head(status: number, headers: Record<string, string>): Buffer {
  const all = { connection: 'close', ...headers };
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(all).map(([name, value]) => `${name}: ${value}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
}

/** Chunked transfer coding of `parts`, terminated properly: the HTTP level ends cleanly. */
export function chunked(parts: Buffer[]): Buffer {
  return Buffer.concat([
    ...parts
      .filter((part) => part.length > 0)
      .map((part) => Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')])),
    Buffer.from('0\r\n\r\n'),
  ]);
}

export interface HostileUpstream {
  url: string;
  /** Sets the answer to the next requests. */
  answer(next: HostileAnswer): void;
  close(): Promise<void>;
}

/**
 * A raw TCP server speaking just enough HTTP/1.1 to read one request per connection (head and
 * `content-length` body) and answer it with the scripted bytes, byte for byte.
 */
export async function startHostileUpstream(): Promise<HostileUpstream> {
  let current: HostileAnswer = { bytes: [head(500, { 'content-length': '0' })], then: 'end' };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = /content-length:\s*(\d+)/i.exec(received.subarray(0, headEnd).toString('latin1'))?.[1];
      if (received.length < headEnd + 4 + Number(length ?? 0)) return;
      socket.off('data', onData);
      const answer = current;
      void (async () => {
        for (const bytes of answer.bytes) {
          socket.write(bytes);
          const delay = answer.delayMs ?? 5;
          await new Promise((resolve) => (delay === 0 ? setImmediate(resolve) : setTimeout(resolve, delay)));
        }
        if (answer.then === 'reset') socket.resetAndDestroy();
        else socket.end();
      })();
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answer: (next) => void (current = next),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
