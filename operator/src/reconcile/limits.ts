import type { Limits } from '@ccproxy/core';
import type { AccessKey, ProxyUser } from '../resources.ts';

/** What the proxy enforces of a spec: its budget and rate limits, stored as written. */
export function limitsOf(spec: ProxyUser['spec'] | AccessKey['spec']): Limits {
  return {
    ...(spec.budget === undefined ? {} : { budget: spec.budget }),
    ...(spec.rateLimits === undefined ? {} : { rateLimits: spec.rateLimits }),
  };
}
