import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';

/**
 * The floor: the least a Node.js proxy can do — bare `node:http` in, an undici keep-alive pool
 * out, bytes streamed both ways; no auth, no routing, no metering, no logging. What ccproxy adds
 * beyond this is ours to remove. `node floor-proxy.ts <upstream-url>`; prints its port.
 */
const upstream = process.argv[2];
if (upstream === undefined) throw new Error('usage: floor-proxy.ts <upstream-url>');
const pool = new Pool(upstream, { connections: 4096, pipelining: 1, connect: { noDelay: true } });
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'host',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

const server = createServer((req, res) => {
  res.socket?.setNoDelay(true);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
  pool
    .request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'POST', headers, body: req })
    .then(async (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers))
        if (value !== undefined && !hopByHop.has(name)) out[name] = value;
      res.writeHead(answer.statusCode, out);
      await pipeline(answer.body, res);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', 4096, () => {
  const address = server.address();
  if (address !== null && typeof address !== 'string') process.stdout.write(`${address.port}\n`);
});
