import { beforeAll, describe, expect, it } from 'vitest';
import {
  adminFields,
  commonFields,
  loadConfig,
  localFields,
  operatorFields,
  proxyFields,
  secretSources,
  type EnvFields,
} from '@ccproxy/core';
import { ensureHelmBinary } from '@ccproxy/test-harness';
import { find, helmTemplate, podSpec, valuesSets, type EnvVar } from './chart-values.ts';

/** What each command reads (cli/src/*-command.ts and the admin's settings), as one field set per process. */
const processFields: Record<string, EnvFields> = {
  operator: {
    ...commonFields,
    ...operatorFields,
    rotationGraceSeconds: localFields.rotationGraceSeconds,
    breakerOpenMs: proxyFields.breakerOpenMs,
  },
  proxy: { ...commonFields, ...proxyFields },
  admin: { ...commonFields, ...adminFields, watchNamespace: operatorFields.watchNamespace },
};
/** The AWS SDK's own variable, not part of our contract. */
/** Read by the AWS SDK and by Node itself (the operator's heap cap), not by ccproxy's loader. */
const sdkVariables = new Set(['AWS_REGION', 'NODE_OPTIONS']);

/** Plausible values for what the pod gets from Secrets and the Downward API. */
const fromCluster: Record<string, string> = {
  DATABASE_URL: 'postgres://ccproxy:secret@db.internal:5432/ccproxy',
  CCPROXY_KEY_HASHER_SECRET: 'k'.repeat(48),
  CCPROXY_KMS_KEY_ID: 'alias/ccproxy/bedrock-keys',
  CCPROXY_PLAN_API_KEY: 'sk-ant-test',
  CCPROXY_ADMIN_PASSWORD_HASH: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
  CCPROXY_ADMIN_PASSWORD: 'a plain password from Secrets Manager',
  CCPROXY_ADMIN_SESSION_SECRET: 's'.repeat(48),
  'metadata.name': 'ccp-operator-5d8f7c9b4-x2x7q',
  'metadata.namespace': 'ccproxy',
};

/**
 * The environment as the process validates it: a `<VARIABLE>_SECRET_ID` is replaced, as the CLI
 * does before any validation (core/src/runtime-secrets.ts), by the variable it names.
 */
function environmentOf(env: readonly EnvVar[]): Record<string, string> {
  return Object.fromEntries(
    env.map((e) => {
      const resolved = secretSources[e.name]?.variable;
      if (resolved !== undefined) return [resolved, fromCluster[resolved] ?? ''];
      return [
        e.name,
        e.value ?? fromCluster[e.valueFrom?.secretKeyRef?.key ?? e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '',
      ];
    }),
  );
}

beforeAll(() => ensureHelmBinary(), 20 * 60_000);

describe('the environment the chart gives each process', () => {
  it.each(Object.entries(valuesSets))(
    'is one its config validation accepts, with no unknown variable (%s values)',
    async (_name, values) => {
      const objects = await helmTemplate(values);
      for (const [component, fields] of Object.entries(processFields)) {
        const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `ccp-${component}`);
        if (deployment === undefined) continue; // admin disabled
        const env = podSpec(find(objects, 'Deployment', `ccp-${component}`)).containers[0]?.env ?? [];
        const known = new Set(Object.values(fields).map((f) => f.env));
        expect(
          Object.keys(environmentOf(env)).filter((name) => !known.has(name) && !sdkVariables.has(name)),
          `${component}: variables its process does not read`,
        ).toEqual([]);
        // The process's own loader: converts, applies defaults and throws a ConfigError listing every problem.
        expect(() => loadConfig(fields, environmentOf(env)), component).not.toThrow();
      }
    },
  );

  it('would be refused by the process if the chart let a bad value through (so the check is not vacuous)', () => {
    const load = () => loadConfig(processFields.proxy ?? {}, { PORT: '0', CCPROXY_LOG_LEVEL: 'loud' });
    expect(load).toThrow(/PORT="0" is invalid/);
    expect(load).toThrow(/CCPROXY_LOG_LEVEL="loud" is invalid/);
  });
});
