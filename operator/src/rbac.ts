import { group } from './resources.ts';

/** One RBAC rule, as in a Role or ClusterRole. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** Only these objects (get, patch, update, delete; RBAC cannot narrow list, watch or create by name). */
  resourceNames?: string[];
}

/**
 * What the operator may do, and nothing more: read its kinds and set their finalizers,
 * write their status, read Secrets and create generated ones (it never updates or deletes a
 * Secret; garbage collection removes generated ones with their AccessKey), record Events.
 * RBAC cannot narrow update/delete to the operator's own Secrets, so a generated Secret left
 * by a deleted AccessKey is not replaced by the operator: it refuses to adopt it
 * (`SecretNotOwned`) until garbage collection has removed it, then generates a new one.
 * Secrets are listed and watched only to notice changes to referenced ones (their data is
 * dropped from the cache); with CCPROXY_WATCH_NAMESPACE these rules go into a Role of that
 * namespace instead of a ClusterRole.
 */
export const operatorRules: readonly PolicyRule[] = [
  {
    apiGroups: [group],
    resources: ['proxyusers', 'accesskeys', 'bedrockkeys', 'teambudgets'],
    verbs: ['get', 'list', 'watch', 'patch'],
  },
  {
    apiGroups: [group],
    resources: ['proxyusers/status', 'accesskeys/status', 'bedrockkeys/status', 'teambudgets/status'],
    verbs: ['get', 'patch', 'update'],
  },
  // Setting blockOwnerDeletion on an owner reference (generated Secrets → AccessKey, AccessKey →
  // ProxyUser) needs `update` on the owner's finalizers subresource.
  { apiGroups: [group], resources: ['accesskeys/finalizers', 'proxyusers/finalizers'], verbs: ['update'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
];

/**
 * The admission webhook (when on): the operator sets the caBundle of its one
 * MutatingWebhookConfiguration, by name — a ClusterRole of its own even with
 * CCPROXY_WATCH_NAMESPACE, the configuration being cluster-scoped. Its TLS Secret lives in the
 * operator's namespace and is read and created by the Secret rules (`webhookSecretRules`).
 */
export function webhookRules(configurationName: string): PolicyRule[] {
  return [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      verbs: ['get', 'patch'],
      resourceNames: [configurationName],
    },
  ];
}

/**
 * The webhook's TLS Secret, in the operator's own namespace (beside its Lease, a Role): read by
 * name, and created when absent (create cannot be narrowed by name). Never updated: a Secret of
 * that name the operator did not create is left alone.
 */
export function webhookSecretRules(secretName: string): PolicyRule[] {
  return [
    { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: [secretName] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  ];
}

/** Leader election: only Leases, and only in the operator's own namespace (a Role). */
export const leaderElectionRules: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/**
 * The admin's REST facade: it writes the four kinds (the operator does everything that follows
 * from them) and shows their status, and it writes the Secrets it issues keys into — only its
 * own, by the ownership rule of admin/src/store/ownership.ts (labelled, annotated with their
 * resource, owned by it), which RBAC cannot express: it can only leave out `list` and `watch`, so
 * the facade reads a Secret by name when it needs to judge one, and never sees the others.
 */
export const adminRules: readonly PolicyRule[] = [
  {
    apiGroups: [group],
    resources: ['proxyusers', 'accesskeys', 'bedrockkeys', 'teambudgets'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: [group],
    resources: ['proxyusers/status', 'accesskeys/status', 'bedrockkeys/status', 'teambudgets/status'],
    verbs: ['get'],
  },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'patch', 'delete'] },
];
