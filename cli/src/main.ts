#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError } from '@ccproxy/core';
import { runLocal } from './local-command.ts';
import { runOperator } from './operator-command.ts';
import { runProxy } from './proxy-command.ts';
import type { Running } from './running.ts';

const usage = `usage: ccproxy <command> [options]

commands:
  local [--manifests DIR]   everything in one process on the embedded default (npm start)
  proxy                     the data plane (needs DATABASE_URL and CCPROXY_KEY_HASHER_SECRET)
  operator                  the Kubernetes control plane (KUBECONFIG or in-cluster; DATABASE_URL,
                            CCPROXY_KEY_HASHER_SECRET, CCPROXY_KMS_KEY_ID)

Configuration is read from the environment; see the README.`;

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { manifests: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  const env = { ...process.env };
  if (values.manifests !== undefined) env.CCPROXY_MANIFESTS_DIR = values.manifests;
  const command = positionals[0];
  if (values.help === true || command === undefined) {
    console.log(usage);
    return;
  }
  let running: Running;
  if (command === 'local') running = await runLocal(env);
  else if (command === 'proxy') running = await runProxy(env);
  else if (command === 'operator') running = await runOperator(env);
  else throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  onSignals(running);
}

function onSignals(running: Running): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
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
