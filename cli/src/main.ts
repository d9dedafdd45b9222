#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, resolveRuntimeSecrets, watchRuntimeSecrets } from '@ccproxy/core';
import { commandHelp, commandSummaries, type CommandName } from './command-fields.ts';
import type { Running } from './running.ts';

/**
 * Each command's module is loaded only when it runs: a proxy replica never holds the operator's
 * Kubernetes client or the admin app in its heap. Full GCs, which set the data plane's tail
 * latency, grow with the live heap (docs/performance.md); cli/test/module-graph.test.ts keeps it so.
 */
const commands: Record<CommandName, () => Promise<(env: Record<string, string | undefined>) => Promise<Running>>> = {
  local: async () => (await import('./local-command.ts')).runLocal,
  proxy: async () => (await import('./proxy-command.ts')).runProxy,
  operator: async () => (await import('./operator-command.ts')).runOperator,
  admin: async () => (await import('./admin-command.ts')).runAdmin,
};

const usage = `usage: ccproxy <command> [options]

commands:
${Object.entries(commandSummaries)
  .map(([name, summary]) => `  ${name.padEnd(10)}${summary}`)
  .join('\n')}

options:
  -h, --help       this help; \`ccproxy <command> --help\` lists the environment variables a command reads
  -v, --version    the version
  --manifests DIR  (local) the resource folder, same as CCPROXY_MANIFESTS_DIR

Configuration is read from the environment; see the README.`;

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseCommandLine(argv);
  if (values.version === true) {
    console.log(await version());
    return;
  }
  const command = positionals[0];
  if (command === undefined) {
    console.log(usage);
    return;
  }
  if (!isCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  if (values.manifests !== undefined && command !== 'local')
    throw new UsageError('--manifests is an option of `ccproxy local` only');
  if (values.help === true) {
    console.log(commandHelp(command));
    return;
  }
  const env = { ...process.env };
  if (values.manifests !== undefined) env.CCPROXY_MANIFESTS_DIR = values.manifests;
  const load = commands[command];
  // `<VARIABLE>_SECRET_ID` → the value from Secrets Manager, before any configuration is validated.
  const secrets = await resolveRuntimeSecrets(env).catch((error: Error) => {
    throw new ConfigError([error.message]);
  });
  const intervalMs = secretsCheckMs(env.CCPROXY_SECRETS_CHECK_SECONDS);
  const run = await load();
  const running = await run(secrets.env);
  const stop = onSignals(running);
  // A rotated secret is taken up by a fresh process (the Deployment restarts the pod).
  watchRuntimeSecrets(secrets, (secretId) => stop(`secret ${secretId} rotated`), { intervalMs });
}

/** How often the secrets read at start are checked for a rotation (seconds, default 300). */
function secretsCheckMs(raw: string | undefined): number {
  if (raw === undefined) return 300_000;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400)
    throw new ConfigError([`CCPROXY_SECRETS_CHECK_SECONDS=${raw} is not a whole number of seconds from 1 to 86400`]);
  return seconds * 1000;
}

/** Strict: an unknown option or a missing value is a usage error (exit 2), not a stack trace. */
function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        manifests: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    const message = error instanceof Error ? (error.message.split('. ')[0] ?? error.message) : String(error);
    throw new UsageError(message.replace(/\.$/, ''));
  }
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(commands, name);
}

async function version(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `ccproxy ${manifest.version}`;
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
