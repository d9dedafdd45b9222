import { JsonPatch } from 'cdk8s';
import {
  KubeClusterRole,
  KubeClusterRoleBinding,
  KubeMutatingWebhookConfiguration,
  KubeRole,
  KubeRoleBinding,
} from 'cdk8s-plus-27/lib/imports/k8s.js';
import type { Construct } from 'constructs';
import { webhookRules, webhookSecretRules } from './rbac.ts';

/** The operator's admission webhook port (container port `webhook`; the Service's 443). */
export const webhookPort = 9443;

/**
 * The operator's MutatingWebhookConfiguration (no caBundle: the operator sets it) and the RBAC
 * for it and for its TLS Secret, as the chart's operator.yaml and rbac.yaml render them.
 */
export function admissionWebhook(scope: Construct, name: string, namespace: string, watch: string): void {
  const configuration = new KubeMutatingWebhookConfiguration(scope, 'operator-webhook', {
    metadata: { name },
    webhooks: [
      {
        name: 'metadata.ccproxy.io',
        clientConfig: { service: { name, namespace, path: '/mutate', port: 443 } },
        rules: [
          {
            apiGroups: ['ccproxy.io'],
            apiVersions: ['*'],
            operations: ['CREATE'],
            resources: ['proxyusers', 'accesskeys', 'bedrockkeys', 'teambudgets'],
            scope: 'Namespaced',
          },
        ],
        ...(watch === '' ? {} : { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': watch } } }),
        failurePolicy: 'Ignore',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        timeoutSeconds: 2,
        admissionReviewVersions: ['v1'],
      },
    ],
  });
  const role = new KubeClusterRole(scope, 'operator-webhook-role', {
    metadata: { name: `${name}-webhook` },
    rules: webhookRules(name),
  });
  const binding = new KubeClusterRoleBinding(scope, 'operator-webhook-binding', {
    metadata: { name: `${name}-webhook` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${name}-webhook` },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  for (const object of [configuration, role, binding]) object.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  new KubeRole(scope, 'operator-webhook-tls-role', {
    metadata: { name: `${name}-webhook-tls`, namespace },
    rules: webhookSecretRules(`${name}-webhook-tls`),
  });
  new KubeRoleBinding(scope, 'operator-webhook-tls-binding', {
    metadata: { name: `${name}-webhook-tls`, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${name}-webhook-tls` },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
}
