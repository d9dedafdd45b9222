import { ownerAnnotation, ownerFromAnnotation } from '@ccproxy/operator';
import type { Kind, ResourceStore, StoredResource } from './resource-store.ts';

/**
 * The ownership rule for Secrets, decided here and nowhere else (README, "What the admin
 * writes"): the admin writes or deletes a Secret only when ccproxy made it for that very
 * resource — labelled `app.kubernetes.io/managed-by` by ccproxy (the admin, or the operator
 * that generated it), annotated `ccproxy.io/owner: <Kind>/<name>` with that resource, owned by
 * no earlier resource of that name (owner reference uid), not hand-written into the manifests
 * folder, and named by no other resource. A name nobody uses is free. Anything else is someone
 * else's: the write is refused with a 409 saying what is in the way, and nothing is touched.
 */
export const managedByLabel = 'app.kubernetes.io/managed-by';
export const adminManager = 'ccproxy-admin';
/** Managers whose Secrets count as ccproxy's own: the admin, and the operator (Kubernetes, local). */
const ccproxyManagers = new Set([adminManager, 'ccproxy-operator', 'ccproxy']);

/** The resource a Secret is written for. `uid` is unknown until the resource exists. */
export interface SecretFor {
  kind: Kind;
  name: string;
  uid?: string;
}

export interface SecretMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
}

/** What a store found under a Secret's name. */
export interface SecretFacts {
  namespace: string;
  name: string;
  /** Local mode: the manifests-folder file (relative path) holding a Secret of this name. */
  manifestFile?: string;
  /** The Secret in the store's own place (data dir, Kubernetes API); undefined when there is none. */
  metadata?: SecretMetadata;
  /** Other resources of the namespace that name this Secret, as `Kind ns/name`. */
  referrers: string[];
}

/** The one decision: undefined when the Secret is the admin's to write for `owner`, else why not. */
export function secretRefusal(facts: SecretFacts, owner: SecretFor): string | undefined {
  const id = `Secret ${facts.namespace}/${facts.name}`;
  const notFor = `not one the admin created for ${owner.name}`;
  if (facts.manifestFile !== undefined) return `${id} is managed in ${facts.manifestFile}; edit it there`;
  if (facts.referrers.length > 0) return `${id} is in the way: it belongs to ${facts.referrers.join(', ')}, ${notFor}`;
  const metadata = facts.metadata;
  if (metadata === undefined) return undefined;
  const claimed = ownerFromAnnotation(metadata.annotations);
  if (!ccproxyManagers.has(metadata.labels?.[managedByLabel] ?? '') || claimed === undefined)
    return `${id} is not managed by ${adminManager}; rotate or change it where it is managed`;
  if (claimed.kind !== owner.kind || claimed.name !== owner.name)
    return `${id} is in the way: it belongs to ${claimed.kind} ${facts.namespace}/${claimed.name}, ${notFor}`;
  const controller = metadata.ownerReferences?.find((reference) => reference.controller === true);
  if (controller !== undefined && controller.uid !== owner.uid)
    return `${id} is in the way: it was generated for an earlier ${owner.kind} ${facts.namespace}/${owner.name} (uid ${controller.uid}), since deleted; garbage collection removes it (or delete it)`;
  return undefined;
}

/** Resources of the namespace other than `owner` that name the Secret (AccessKey `secretName`, BedrockKey `secretRef`). */
export async function referrersOf(
  store: Pick<ResourceStore, 'list'>,
  namespace: string,
  secretName: string,
  owner: SecretFor,
): Promise<string[]> {
  const named = (kind: Kind, nameOf: (spec: Record<string, unknown>) => unknown) =>
    store
      .list(kind)
      .then((items) =>
        items
          .filter(
            (item) =>
              item.namespace === namespace &&
              !(item.kind === owner.kind && item.name === owner.name) &&
              nameOf(item.spec) === secretName,
          )
          .map((item) => `${item.kind} ${namespace}/${item.name}`),
      );
  const [keys, bedrockKeys] = await Promise.all([
    named('AccessKey', (spec) => spec.secretName),
    named('BedrockKey', (spec) => (spec.secretRef as { name?: unknown } | undefined)?.name),
  ]);
  return [...keys, ...bedrockKeys];
}

/** Labels and annotation of every Secret the admin writes for `owner`. */
export function adminSecretMetadata(owner: SecretFor): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  return {
    labels: { [managedByLabel]: adminManager },
    annotations: { [ownerAnnotation]: `${owner.kind}/${owner.name}` },
  };
}

/** The resource a stored one's Secret is written for. */
export function ownerOf(resource: StoredResource): SecretFor {
  return { kind: resource.kind, name: resource.name, ...(resource.uid === undefined ? {} : { uid: resource.uid }) };
}

/**
 * A Secret written for a resource being created (`fresh`) must not exist yet: two requests
 * creating the same resource would otherwise both write it, and the one whose create then failed
 * would undo the other's (seen: a 201 with a key that did not work). One older than this, of a
 * resource that does not exist, is what an earlier attempt left (a crash between its two writes)
 * and is written over; a younger one is another request's, and this one gets a 409.
 */
export const leftoverSecretMs = 30_000;

/** The refusal of a fresh write over a Secret `ageMs` old; undefined when it is a leftover. */
export function freshRefusal(namespace: string, name: string, owner: SecretFor, ageMs: number): string | undefined {
  if (ageMs >= leftoverSecretMs) return undefined;
  return `Secret ${namespace}/${name} is being written for ${owner.kind} ${namespace}/${owner.name} by another request; nothing was written (retry)`;
}
