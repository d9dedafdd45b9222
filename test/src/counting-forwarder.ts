import { createConnection, createServer, type Socket } from 'node:net';

export interface CountingForwarder {
  /** The forwarder's URL, with the target's scheme and host name (TLS passes through untouched). */
  readonly url: string;
  /** TCP connections opened to it so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A TCP forwarder in front of a server (the real API server, say) that counts the connections a
 * client opens through it: how a test sees whether a client keeps its connections alive or
 * opens one (with a TLS handshake) per call.
 */
export async function startCountingForwarder(target: URL): Promise<CountingForwarder> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    connections += 1;
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `${target.protocol}//${target.hostname}:${port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
