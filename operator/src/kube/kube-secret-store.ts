import {
  ownerAnnotations,
  ownerFromAnnotation,
  type SecretOwner,
  type SecretStore,
  type StoredSecret,
} from '../reconcile/secret-store.ts';
import { group, version } from '../resources.ts';
import type { KubeClient, KubeObject, SecretObject } from './kube-client.ts';
import type { Reflector } from './reflector.ts';

/** Labels on Secrets the operator generated; nothing is copied from the owner (no GitOps tracking labels). */
export const generatedSecretLabels = {
  'app.kubernetes.io/managed-by': 'ccproxy-operator',
  'app.kubernetes.io/part-of': 'claude-code-proxy',
} as const;

/** The operator's Secret caches: its generated Secrets (with data) and every Secret's metadata. */
export interface SecretCaches {
  generated: Pick<Reflector, 'get' | 'inject' | 'hasSynced'>;
  metadata: Pick<Reflector, 'get' | 'inject' | 'hasSynced'>;
}

/**
 * Access-key and Bedrock-key Secrets in the Kubernetes API. Generated Secrets are owned by their
 * AccessKey (controller owner reference), so Kubernetes garbage-collects them with it — the key
 * is revoked by the finalizer first. With caches (the operator's), reads cost no request where
 * the watches already know the answer: a generated Secret comes from its cache, a Secret no watch
 * has seen does not exist (its creation, if another writer wins, is read back from the API), and
 * only a brought Secret (External Secrets, SealedSecrets, the admin's) is read from the API.
 */
export class KubeSecretStore implements SecretStore {
  readonly #client: Pick<KubeClient, 'readSecret' | 'createSecret'>;
  readonly #caches: SecretCaches | undefined;
  /** Names whose create lost to another writer: read from the API until the watch shows them. */
  readonly #readFresh = new Set<string>();

  constructor(client: Pick<KubeClient, 'readSecret' | 'createSecret'>, caches?: SecretCaches) {
    this.#client = client;
    this.#caches = caches;
  }

  async read(namespace: string, name: string): Promise<StoredSecret | undefined> {
    const key = `${namespace}/${name}`;
    const caches = this.#caches;
    if (caches !== undefined && !this.#readFresh.has(key) && caches.generated.hasSynced && caches.metadata.hasSynced) {
      const generated = caches.generated.get(key);
      if (generated !== undefined) return storedOf(generated);
      if (caches.metadata.get(key) === undefined) return undefined;
    }
    const secret = await this.#client.readSecret(namespace, name);
    if (secret !== undefined && caches?.metadata.get(key) !== undefined) this.#readFresh.delete(key);
    return secret === undefined ? undefined : storedOf(secret as KubeObject);
  }

  async writeGenerated(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: { kind: string; name: string; uid: string },
  ): Promise<void> {
    // A 409 (someone created it first) is fine: the caller reads back whichever key won.
    const created = await this.#client.createSecret(namespace, {
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
    if (created === undefined) this.#readFresh.add(`${namespace}/${name}`);
    else {
      // Both caches learn of the Secret from the create's answer, so neither watch event of it
      // wakes its AccessKey again (1,000 keys: 1,000 second reconciles for the metadata watch's ADDED).
      this.#caches?.generated.inject(trimmed(created), undefined);
      this.#caches?.metadata.inject(metadataOnly(created), undefined);
    }
  }
}

/** What the metadata-only Secret cache keeps: name and version. */
export function metadataOnly(secret: SecretObject | KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion } = (secret.metadata ?? {}) as KubeObject['metadata'];
  return { kind: 'Secret', metadata: { name, namespace, uid, resourceVersion } };
}

/** What the generated-Secret cache keeps: names, owner, version and data (no managedFields). */
export function trimmed(secret: SecretObject | KubeObject): KubeObject {
  const metadata = (secret.metadata ?? {}) as KubeObject['metadata'];
  const { name, namespace, uid, resourceVersion, ownerReferences, annotations, labels } = metadata;
  return {
    kind: 'Secret',
    metadata: { name, namespace, uid, resourceVersion, ownerReferences, annotations, labels },
    data: (secret as { data?: Record<string, string> }).data ?? {},
  };
}

function storedOf(secret: KubeObject & { stringData?: Record<string, string> }): StoredSecret {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  // The controller owner reference (with its uid) is the authority; the annotations are what
  // Secrets written by the admin carry, and what stays when the owner reference is removed
  // (an AccessKey deleted with --cascade=orphan leaves its Secret with its old uid recorded).
  const controller = secret.metadata.ownerReferences?.find((reference) => reference.controller === true);
  const owner: SecretOwner | undefined =
    controller === undefined
      ? ownerFromAnnotation(secret.metadata.annotations)
      : { kind: controller.kind, name: controller.name, uid: controller.uid };
  return { data: { ...out, ...secret.stringData }, ...(owner === undefined ? {} : { owner }) };
}
