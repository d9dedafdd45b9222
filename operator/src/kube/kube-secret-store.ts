import {
  ownerAnnotations,
  ownerFromAnnotation,
  type SecretOwner,
  type SecretStore,
  type StoredSecret,
} from '../reconcile/secret-store.ts';
import { group, version } from '../resources.ts';
import type { KubeClient } from './kube-client.ts';

/** Labels on Secrets the operator generated; nothing is copied from the owner (no GitOps tracking labels). */
export const generatedSecretLabels = {
  'app.kubernetes.io/managed-by': 'ccproxy-operator',
  'app.kubernetes.io/part-of': 'claude-code-proxy',
} as const;

/**
 * Access-key and Bedrock-key Secrets in the Kubernetes API. Generated Secrets are owned by their
 * AccessKey (controller owner reference), so Kubernetes garbage-collects them with it — the key
 * is revoked by the finalizer first.
 */
export class KubeSecretStore implements SecretStore {
  readonly #client: Pick<KubeClient, 'readSecret' | 'createSecret'>;

  constructor(client: Pick<KubeClient, 'readSecret' | 'createSecret'>) {
    this.#client = client;
  }

  async read(namespace: string, name: string): Promise<StoredSecret | undefined> {
    const secret = await this.#client.readSecret(namespace, name);
    if (secret === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(secret.data ?? {}))
      out[key] = Buffer.from(value, 'base64').toString('utf8');
    // The controller owner reference (with its uid) is the authority; the annotations are what
    // Secrets written by the admin carry, and what stays when the owner reference is removed
    // (an AccessKey deleted with --cascade=orphan leaves its Secret with its old uid recorded).
    const controller = secret.metadata?.ownerReferences?.find((reference) => reference.controller === true);
    const owner: SecretOwner | undefined =
      controller === undefined
        ? ownerFromAnnotation(secret.metadata?.annotations)
        : { kind: controller.kind, name: controller.name, uid: controller.uid };
    return { data: { ...out, ...secret.stringData }, ...(owner === undefined ? {} : { owner }) };
  }

  async writeGenerated(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: { kind: string; name: string; uid: string },
  ): Promise<void> {
    // A 409 (someone created it first) is fine: the caller reads back whichever key won.
    await this.#client.createSecret(namespace, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name,
        namespace,
        labels: { ...generatedSecretLabels },
        annotations: ownerAnnotations(owner),
        ownerReferences: [
          {
            apiVersion: `${group}/${version}`,
            kind: owner.kind,
            name: owner.name,
            uid: owner.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      data: Object.fromEntries(
        Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
      ),
    });
  }
}
