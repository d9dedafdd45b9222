#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, resolveRuntimeSecrets, watchRuntimeSecrets } from '@ccproxy/core';
import type { Running } from './running.ts';

/**
 * Each command's module is loaded only when it runs: a proxy replica never holds the operator's
 * Kubernetes client or the admin app in its heap. Full GCs, which set the data plane's tail
 * latency, grow with the live heap (docs/performance.md); cli/test/module-graph.test.ts keeps it so.
 */
const commands: Record<string, () => Promise<(env: Record<string, string | undefined>) => Promise<Running>>> = {
  local: async () => (await import('./local-command.ts')).runLocal,
  proxy: async () => (await import('./proxy-command.ts')).runProxy,
  operator: async () => (await import('./operator-command.ts')).runOperator,
  admin: async () => (await import('./admin-command.ts')).runAdmin,
};

const usage = `usage: ccproxy <command> [options]

commands:
  local [--manifests DIR]   everything in one process on the embedded default (npm start)
  proxy                     the data plane (needs DATABASE_URL and CCPROXY_KEY_HASHER_SECRET)
  admin                     the admin UI and REST facade in a cluster (KUBECONFIG or in-cluster;
                            DATABASE_URL, CCPROXY_ADMIN_PASSWORD_HASH)
  operator                  the Kubernetes control plane (KUBECONFIG or in-cluster; DATABASE_URL,
                            CCPROXY_KEY_HASHER_SECRET, CCPROXY_KMS_KEY_ID)

Configuration is read from the environment; see the README.`;

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { manifests: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const env = { ...process.env };
  if (values.manifests !== undefined) env.CCPROXY_MANIFESTS_DIR = values.manifests;
  const command = positionals[0];
  if (values.help === true || command === undefined) {
    console.log(usage);
    return;
  }
  const load = Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  // `<VARIABLE>_SECRET_ID` → the value from Secrets Manager, before any configuration is validated.
  const secrets = await resolveRuntimeSecrets(env).catch((error: Error) => {
    throw new ConfigError([error.message]);
  });
  const run = await load();
  const running = await run(secrets.env);
  const stop = onSignals(running);
  // A rotated secret is taken up by a fresh process (the Deployment restarts the pod).
  watchRuntimeSecrets(secrets, (secretId) => stop(`secret ${secretId} rotated`));
}

function onSignals(running: Running): (reason: string) => void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    running.logger.info({ reason }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        running.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return stop;
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof UsageError) {
    console.error(`ccproxy: ${error.message}`);
    if (error instanceof UsageError) console.error(usage);
    process.exit(2);
  }
  console.error('ccproxy: failed to start:', error);
  process.exit(1);
});
