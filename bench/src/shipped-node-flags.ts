import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dockerfile = fileURLToPath(new URL('../../Dockerfile', import.meta.url));

/**
 * The Node/V8 flags the product ships with: those of the runtime image's `ENTRYPOINT` (the
 * Dockerfile is their one source; `npm start` passes the same ones, which a test holds it to).
 * The bench runs ccproxy — and the floor, so the floor stays what Node can do on the same runtime
 * settings — with exactly these, so it measures the proxy as deployed.
 */
export function shippedNodeFlags(): string[] {
  const runtime =
    readFileSync(dockerfile, 'utf8')
      .split(/^FROM /m)
      .at(-1) ?? '';
  const entrypoint = /^ENTRYPOINT (\[.*\])\s*$/m.exec(runtime)?.[1];
  if (entrypoint === undefined) throw new Error('Dockerfile: no ENTRYPOINT ["node", ...] in the runtime stage');
  return (JSON.parse(entrypoint) as string[]).slice(1).filter((arg) => arg.startsWith('--'));
}

const operatorTemplate = fileURLToPath(
  new URL('../../charts/claude-code-proxy/templates/operator.yaml', import.meta.url),
);

/**
 * The flags the operator runs with in the chart: the image's, plus the chart's `NODE_OPTIONS` for
 * the operator container (its heap cap), so `operator-scale` measures the operator as deployed.
 */
export function operatorNodeFlags(): string[] {
  const options = /name: NODE_OPTIONS, value: "([^"]*)"/.exec(readFileSync(operatorTemplate, 'utf8'))?.[1];
  if (options === undefined) throw new Error('charts/…/operator.yaml: no NODE_OPTIONS for the operator container');
  return [...shippedNodeFlags(), ...options.split(/\s+/).filter(Boolean)];
}
