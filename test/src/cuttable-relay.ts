import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What the relay does with each request: pass it to the target, refuse connections (nothing
 * listens on the port), accept and never answer, or answer as a failing AWS service does
 * (`500 KMSInternalException`, `400 ThrottlingException`, in the awsJson protocol's shape), or
 * refuses as a service that answers but says no (`400 AccessDeniedException`: not an outage).
 */
export type RelayMode = 'pass' | 'refuse' | 'hang' | 'error500' | 'throttle' | 'deny';

export interface CuttableRelay {
  /** Where clients connect instead of the target (e.g. `AWS_ENDPOINT_URL_KMS`). */
  readonly url: string;
  /** Requests that reached the relay, by the mode that answered them. */
  readonly seen: Record<RelayMode, number>;
  /** Switches the mode; `refuse` stops listening (and drops open connections), any other listens again. */
  setMode(mode: RelayMode): Promise<void>;
  close(): Promise<void>;
}

/**
 * An HTTP relay in front of a real server (moto's KMS in the tests) that a test can cut in the
 * ways an outage looks from a client: refused connections, a silent endpoint, 5xx, throttling.
 * Each switch also drops the connections open at that moment, so keep-alive sockets do not
 * carry the old behaviour over.
 */
export async function startCuttableRelay(target: string): Promise<CuttableRelay> {
  const targetUrl = new URL(target);
  let mode: RelayMode = 'pass';
  const seen: Record<RelayMode, number> = { pass: 0, refuse: 0, hang: 0, error500: 0, throttle: 0, deny: 0 };
  const sockets = new Set<Socket>();
  const awsError = (res: ServerResponse, status: number, type: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
    res.end(JSON.stringify({ __type: type, message }));
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    seen[mode] += 1;
    if (mode === 'hang') return; // read nothing back, answer nothing: the socket stays open
    if (mode === 'error500') return awsError(res, 500, 'KMSInternalException', 'relay: injected internal failure');
    if (mode === 'throttle') return awsError(res, 400, 'ThrottlingException', 'Rate exceeded');
    if (mode === 'deny') return awsError(res, 400, 'AccessDeniedException', 'relay: not authorized to use this key');
    const upstream = request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = createServer(handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async setMode(next) {
      const wasListening = server.listening;
      mode = next;
      dropConnections();
      if (next === 'refuse' && wasListening) {
        const closed = once(server, 'close');
        server.close();
        await closed;
      } else if (next !== 'refuse' && !wasListening) {
        server.listen(port, '127.0.0.1');
        await once(server, 'listening');
      }
    },
    async close() {
      dropConnections();
      if (server.listening) {
        const closed = once(server, 'close');
        server.close();
        await closed;
      }
    },
  };
}
