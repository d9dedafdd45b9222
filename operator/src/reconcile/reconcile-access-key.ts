import {
  disableAccessKey,
  findAccessKeyId,
  findUser,
  generateAccessKey,
  keyPrefix,
  revokeAccessKey,
  upsertAccessKey,
  type KeyHasher,
  type Queryable,
} from '@ccproxy/core';
import type { AccessKey } from '../resources.ts';
import { inactive, missingReference, ready, stalled, type ReferenceWait, type ResourceStatus } from './conditions.ts';
import { budgetStatus } from './budget-status.ts';
import { limitsOf } from './limits.ts';
import { refOf } from './object-ref.ts';
import type { SecretStore, StoredSecret } from './secret-store.ts';

export interface AccessKeyDeps {
  db: Queryable;
  secrets: SecretStore;
  hashKey: KeyHasher;
  rotationGraceSeconds: number;
  /** Base URL users reach (CCPROXY_PUBLIC_URL); when known, generated Secrets carry ANTHROPIC_BASE_URL. */
  publicUrl: string | undefined;
  /** How long a missing ProxyUser is waited for before the key is Stalled (undefined: not at all). */
  referenceWait?: ReferenceWait;
  /** The ProxyUser this key belongs to, as its source records it (see `UserBinding`). */
  binding?: UserBinding;
}

/**
 * Which ProxyUser an AccessKey belongs to: the uid its ownerReference names (Kubernetes), and
 * whether the source knows that user is gone (deleted, being deleted, or replaced by a new
 * object of the same name). A key of a gone user is dead for good: it is never served again,
 * even when a user of the same name appears; garbage collection deletes the AccessKey.
 */
export interface UserBinding {
  userUid?: string;
  userGone?: boolean;
}

export interface AccessKeyOutcome {
  status: ResourceStatus;
  /** The usable key, for local mode's start banner only; never logged or stored. */
  key?: string;
}

/** Bring-your-own keys shorter than this are too guessable to accept. */
const minimumKeyLength = 24;

/**
 * `sharers`: the other AccessKeys of the namespace that name the same Secret. A Secret is one
 * key for one AccessKey: while others name it too, none of them is served (each would
 * authenticate as the other), and the rows of all are disabled until one names another Secret.
 */
export async function reconcileAccessKey(
  resource: AccessKey,
  deps: AccessKeyDeps,
  sharers: readonly string[] = [],
): Promise<AccessKeyOutcome> {
  const ref = refOf(resource);
  if (sharers.length > 0) {
    await disableAccessKey(deps.db, ref.namespace, ref.name);
    const others = sharers.map((name) => `AccessKey ${ref.namespace}/${name}`).join(', ');
    return {
      status: stalled(
        'SecretConflict',
        `Secret ${ref.namespace}/${resource.spec.secretName} is also named by ${others}; a Secret holds the key of one AccessKey only, so none of them works until all but one name another Secret.`,
      ),
    };
  }
  const user = await findUser(deps.db, ref.namespace, resource.spec.userRef.name);
  const boundUid = deps.binding?.userUid;
  const userGone =
    deps.binding?.userGone === true || (boundUid !== undefined && user !== undefined && user.uid !== boundUid);
  if (userGone && boundUid !== undefined) {
    await disableAccessKey(deps.db, ref.namespace, ref.name);
    return {
      status: stalled(
        'UserDeleted',
        `ProxyUser ${ref.namespace}/${resource.spec.userRef.name} (uid ${boundUid}) that this key belonged to was deleted; the key is revoked for good. Garbage collection deletes this AccessKey (unless it was orphaned: then delete it); a user created again under that name needs a new AccessKey.`,
      ),
    };
  }
  // A user that is going (or not bound yet and being deleted) is waited for like a missing one.
  const userId = userGone ? undefined : user?.id;
  if (userId === undefined) {
    await revokeAccessKey(deps.db, ref.namespace, ref.name);
    return {
      status: missingReference(
        deps.referenceWait,
        { waiting: 'WaitingForUser', stalled: 'UserNotFound' },
        `ProxyUser ${ref.namespace}/${resource.spec.userRef.name} does not exist.`,
      ),
    };
  }
  const { secret, generated } = await currentSecret(resource, deps);
  const foreign = foreignOwner(resource, secret);
  if (foreign !== undefined) {
    await disableAccessKey(deps.db, ref.namespace, ref.name);
    return { status: stalled('SecretNotOwned', foreign) };
  }
  const key = secret?.data.accessKey;
  if (key === undefined || key.length < minimumKeyLength) {
    return {
      status: stalled(
        'InvalidKey',
        `Secret ${resource.spec.secretName} holds an accessKey shorter than ${minimumKeyLength} characters.`,
      ),
    };
  }
  const bedrock = resource.spec.bedrock;
  await upsertAccessKey(
    deps.db,
    {
      ...ref,
      userId,
      keyHash: deps.hashKey(key),
      keyPrefix: keyPrefix(key),
      revoked: resource.spec.revoked,
      routing: resource.spec.routing,
      bedrock: {
        region: bedrock?.region ?? null,
        api: bedrock?.api ?? 'InvokeModel',
        model: bedrock?.model ?? null,
        modelMap: bedrock?.modelMap ?? {},
      },
      limits: limitsOf(resource.spec),
    },
    // A key written into the Secret by its owner rotates with a grace period; a key generated
    // because the Secret was deleted replaces the old one at once — a deleted Secret is a
    // deleted key.
    generated ? 0 : deps.rotationGraceSeconds,
  );
  const keyId =
    resource.spec.budget === undefined ? undefined : await findAccessKeyId(deps.db, ref.namespace, ref.name);
  const budget =
    keyId === undefined ? undefined : await budgetStatus(deps.db, { kind: 'key', id: keyId }, resource.spec.budget);
  const fields = { keyPrefix: keyPrefix(key), ...(budget === undefined ? {} : { budget }) };
  if (resource.spec.revoked) return { status: inactive('Revoked', 'Access key is revoked.', fields) };
  if (user?.suspended === true)
    return {
      status: inactive(
        'UserSuspended',
        `ProxyUser ${ref.namespace}/${resource.spec.userRef.name} is suspended: the key is refused.`,
        fields,
      ),
    };
  return { status: ready('KeyActive', 'Access key is active.', fields), key };
}

/**
 * Why the Secret may not be adopted, if it may not: it says it was made for another AccessKey
 * (another name, or an earlier AccessKey of this name, told by the owner reference's uid). Such
 * a key is someone else's — or the leftover of a deleted AccessKey, which must never come back
 * to life in a re-created one. Secrets without an owner (bring your own) are adopted.
 */
function foreignOwner(resource: AccessKey, secret: StoredSecret | undefined): string | undefined {
  const owner = secret?.owner;
  if (owner === undefined || owner.kind !== 'AccessKey') return undefined;
  const ref = refOf(resource);
  const where = `Secret ${ref.namespace}/${resource.spec.secretName}`;
  if (owner.name !== ref.name)
    return `${where} belongs to AccessKey ${ref.namespace}/${owner.name}; its key is not adopted. Name another Secret.`;
  if (owner.uid !== undefined && owner.uid !== ref.uid)
    return `${where} was generated for an earlier AccessKey ${ref.namespace}/${ref.name} (uid ${owner.uid}), since deleted; its key is not adopted. Garbage collection removes it while its owner reference names the deleted AccessKey (one left by --cascade=orphan stays until you delete it); then a new key is generated.`;
  return undefined;
}

/** The named Secret (adopted), or a newly generated one written to a new Secret (`generated`). */
async function currentSecret(
  resource: AccessKey,
  deps: AccessKeyDeps,
): Promise<{ secret: StoredSecret | undefined; generated: boolean }> {
  const ref = refOf(resource);
  const existing = await deps.secrets.read(ref.namespace, resource.spec.secretName);
  if (existing !== undefined) return { secret: existing, generated: false };
  const key = generateAccessKey();
  const data: Record<string, string> = { accessKey: key };
  if (deps.publicUrl !== undefined) data.ANTHROPIC_BASE_URL = baseUrlFor(deps.publicUrl, key);
  await deps.secrets.writeGenerated(ref.namespace, resource.spec.secretName, data, {
    kind: resource.kind,
    name: ref.name,
    uid: ref.uid,
  });
  // Read back: if another writer won the race, its key (and owner) is the one that counts.
  return { secret: await deps.secrets.read(ref.namespace, resource.spec.secretName), generated: true };
}

export function baseUrlFor(publicUrl: string, key: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/ak/${key}`;
}
