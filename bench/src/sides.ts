import { Client } from 'undici';

/**
 * What one run compares: the baseline, the physical floor, the product, and the published peers
 * (`peer` is Portkey's gateway, the name older saved runs use; LiteLLM and Bifrost by name).
 */
export const sideNames = ['direct', 'floor', 'ccproxy', 'peer', 'litellm', 'bifrost'] as const;
/** The sides that are gateways a company would pick instead of ccproxy. */
export const peerNames = ['peer', 'litellm', 'bifrost'] as const;
export const peerLabel: Record<(typeof peerNames)[number], string> = {
  peer: 'Portkey',
  litellm: 'LiteLLM',
  bifrost: 'Bifrost',
};
export type SideName = (typeof sideNames)[number];

export interface Side {
  name: SideName;
  origin: string;
  path: string;
  /** Headers this side needs on top of the request's own (the peer's routing headers). */
  headers: Record<string, string>;
  /** The process charged for this side's CPU and memory; absent for direct (nothing in between). */
  pid?: number;
  /** Its inspector's port once woken by SIGUSR1 (`--inspect-port`), for the memory pass's forced GC. */
  inspectPort?: number;
  /** One keep-alive connection for the concurrency-1 scenarios. */
  client: Client;
}

export function side(
  name: SideName,
  origin: string,
  path: string,
  options: { pid?: number; inspectPort?: number; headers?: Record<string, string> } = {},
): Side {
  const { pid, inspectPort } = options;
  return {
    name,
    origin,
    path,
    headers: options.headers ?? {},
    ...(pid === undefined ? {} : { pid }),
    ...(inspectPort === undefined ? {} : { inspectPort }),
    client: new Client(origin, { pipelining: 1 }),
  };
}

/** Samples per side, collected across interleaved rounds. */
export type PerSide = Record<SideName, number[]>;
export const perSide = (): PerSide => ({ direct: [], floor: [], ccproxy: [], peer: [], litellm: [], bifrost: [] });

export const isPeer = (name: SideName): boolean => (peerNames as readonly string[]).includes(name);
