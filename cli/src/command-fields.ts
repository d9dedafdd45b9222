import {
  adminFields,
  commonFields,
  localFields,
  operatorFields,
  proxyFields,
  secretSources,
  type EnvFields,
} from '@ccproxy/core';

/**
 * The environment each command reads, as the config schemas it validates with. The commands load
 * their configuration from these very sets and `ccproxy <command> --help` lists them, so the help
 * cannot drift from what is read. Only `@ccproxy/core` here: `main.ts` imports this for help
 * without loading any command's packages.
 */
export const commandFields = {
  local: { ...commonFields, ...proxyFields, ...adminFields, ...localFields },
  proxy: {
    host: commonFields.host,
    logLevel: commonFields.logLevel,
    ...proxyFields,
    databaseUrl: commonFields.databaseUrl,
    keyHasherSecret: commonFields.keyHasherSecret,
    dataDir: commonFields.dataDir,
    kmsKeyId: commonFields.kmsKeyId,
    priceTableFile: commonFields.priceTableFile,
  },
  operator: {
    host: commonFields.host,
    logLevel: commonFields.logLevel,
    databaseUrl: commonFields.databaseUrl,
    keyHasherSecret: commonFields.keyHasherSecret,
    publicUrl: commonFields.publicUrl,
    kmsKeyId: commonFields.kmsKeyId,
    rotationGraceSeconds: localFields.rotationGraceSeconds,
    breakerOpenMs: proxyFields.breakerOpenMs,
    breakerWindowMs: proxyFields.breakerWindowMs,
    ...operatorFields,
  },
  admin: {
    ...commonFields,
    ...adminFields,
    breakerOpenMs: proxyFields.breakerOpenMs,
    breakerWindowMs: proxyFields.breakerWindowMs,
    watchNamespace: operatorFields.watchNamespace,
  },
} as const satisfies Record<string, EnvFields>;

export type CommandName = keyof typeof commandFields;

export const commandSummaries: Record<CommandName, string> = {
  local: 'everything in one process on the embedded default (npm start)',
  proxy: 'the data plane (needs DATABASE_URL and CCPROXY_KEY_HASHER_SECRET)',
  admin: 'the admin UI and REST facade in a cluster (KUBECONFIG or in-cluster)',
  operator: 'the Kubernetes control plane (KUBECONFIG or in-cluster)',
};

/** `ccproxy <command> --help`: what it does and every variable it reads, from its schemas. */
export function commandHelp(command: CommandName): string {
  const fields: EnvFields = commandFields[command];
  const rows = Object.values(fields).map((field) => {
    const fallback = (field.schema as { default?: unknown }).default;
    const shown = fallback === undefined ? '' : ` (default ${String(fallback)})`;
    return `  ${field.env}\n      ${field.description}${shown}${field.secret ? ' [secret]' : ''}`;
  });
  const secretIds = Object.entries(secretSources)
    .filter(([, source]) => Object.values(fields).some((field) => field.env === source.variable))
    .map(([id, source]) => `  ${id}\n      AWS Secrets Manager secret (name or ARN) to read ${source.variable} from`);
  const options = command === 'local' ? ['', 'options:', '  --manifests DIR   same as CCPROXY_MANIFESTS_DIR'] : [];
  return [
    `usage: ccproxy ${command}${command === 'local' ? ' [--manifests DIR]' : ''}`,
    '',
    `${command}: ${commandSummaries[command]}`,
    ...options,
    '',
    'environment:',
    ...rows,
    ...secretIds,
  ].join('\n');
}
