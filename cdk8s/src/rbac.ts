import { operatorRules, leaderElectionRules, type PolicyRule } from '@ccproxy/operator';

export { operatorRules, leaderElectionRules, type PolicyRule };

/**
 * The admin's REST facade writes the three kinds (the operator does everything that follows
 * from them) and shows their status; it never touches Secrets: keys reach users through the
 * Secrets the operator generates.
 */
export const adminRules: readonly PolicyRule[] = [
  {
    apiGroups: ['ccproxy.io'],
    resources: ['proxyusers', 'accesskeys', 'bedrockkeys'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: ['ccproxy.io'],
    resources: ['proxyusers/status', 'accesskeys/status', 'bedrockkeys/status'],
    verbs: ['get'],
  },
];
