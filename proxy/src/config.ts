import { loadConfig, commonFields, proxyFields, type ConfigOf } from '@ccproxy/core';

export const proxyConfigFields = {
  host: commonFields.host,
  logLevel: commonFields.logLevel,
  ...proxyFields,
} as const;

export type ProxyConfig = ConfigOf<typeof proxyConfigFields>;

export function loadProxyConfig(env: Readonly<Record<string, string | undefined>>): ProxyConfig {
  return loadConfig(proxyConfigFields, env);
}
