import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dockerfile = fileURLToPath(new URL('../../Dockerfile', import.meta.url));

/**
 * The Node/V8 flags the product ships with: the runtime image's `NODE_OPTIONS` (the Dockerfile is
 * their one source; `npm start` passes the same ones, which a test holds it to). The bench runs
 * ccproxy — and the floor, so the floor stays what Node can do on the same runtime settings — with
 * exactly these, so it measures the proxy as deployed.
 */
export function shippedNodeOptions(): string[] {
  const runtime = readFileSync(dockerfile, 'utf8').split(/^FROM /m).at(-1) ?? '';
  const value = /\bNODE_OPTIONS=("[^"]*"|\S+)/.exec(runtime)?.[1] ?? '';
  return value.replaceAll('"', '').split(/\s+/).filter((flag) => flag !== '');
}
