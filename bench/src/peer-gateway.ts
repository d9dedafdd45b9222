import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { freePort, track, type ProxyProcess } from './processes.ts';

const gateway = fileURLToPath(new URL('../../node_modules/@portkey-ai/gateway/build/start-server.js', import.meta.url));
const shim = fileURLToPath(new URL('./portkey-immutable-headers.ts', import.meta.url));

/**
 * The peer: Portkey's open-source gateway (TypeScript on Node, the closest published neighbour),
 * headless, forwarding Anthropic Messages to the bench upstream through its custom-host setting.
 * Portkey drops the query string and unlisted headers, so the upstream's shaping travels in
 * `x-bench-*` headers it is told to forward.
 */
export async function startPeer(
  upstreamUrl: string,
  nodeArgs: string[] = [],
): Promise<ProxyProcess & { pid: number; headers: Record<string, string> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, '--import', shim, gateway, `--port=${port}`, '--headless'], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  const proxy = await track(child, url, '/');
  return {
    ...proxy,
    headers: {
      'x-portkey-provider': 'anthropic',
      'x-portkey-custom-host': `${upstreamUrl}/v1`,
      'x-portkey-forward-headers': 'x-bench-events,x-bench-gap-ms,x-bench-delay-ms,x-bench-fail,x-bench-stamp',
    },
  };
}
