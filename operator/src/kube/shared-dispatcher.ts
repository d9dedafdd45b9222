import type { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;

/** The agent options that decide a connection's identity (TLS material, server name, verification). */
const identity = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/**
 * client-node 2 builds a new undici Agent for every API call (`applySecurityAuthentication` →
 * `createDispatcher`), so every request paid a fresh TCP + TLS handshake (a new TLS context with
 * the CA parsed again), on both the operator's and the API server's CPU, and left its socket and
 * agent for the garbage collector: at 5,000 keys that was most of the reconcile time and some
 * hundred MB of RSS outside the JS heap. This makes the config hand out one agent for as long as
 * the TLS identity (CA, client certificate, server name) stays the same, so requests ride the
 * agent's keep-alive pool as client-go's do; a rotated client certificate gets a new agent (the
 * old one is closed once its requests finished). Bearer tokens travel in headers, not in the
 * agent, so a refreshed token needs no new agent.
 */
export function shareDispatcher<T extends KubeConfig>(config: T): T {
  const own = config as unknown as { createDispatcher?: CreateDispatcher };
  const create = own.createDispatcher;
  if (typeof create !== 'function' || (create as { shared?: true }).shared === true) return config;
  let current: { key: string; dispatcher: unknown } | undefined;
  const shared: CreateDispatcher = function (this: unknown, cluster, agentOptions) {
    const key = JSON.stringify([
      (cluster as { server?: string } | null)?.server,
      ...identity.map((field) => String(agentOptions[field] ?? '')),
    ]);
    if (current?.key === key) return current.dispatcher;
    const retired = current?.dispatcher as { close?: () => Promise<void> } | undefined;
    void retired?.close?.().catch(() => undefined);
    current = { key, dispatcher: create.call(this, cluster, agentOptions) };
    return current.dispatcher;
  };
  Object.assign(shared, { shared: true });
  own.createDispatcher = shared;
  return config;
}
