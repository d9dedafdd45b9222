import { kindSpec, type Kind } from '../kinds.ts';
import type { UserBinding } from '../reconcile/reconcile-access-key.ts';
import { group, version } from '../resources.ts';
import type { OwnerReference } from './kube-client.ts';

/** The ProxyUser as the API server has it now, if it exists. */
export interface LiveUser {
  uid: string;
  terminating: boolean;
}

/** What to do about an AccessKey's ownerReference to its ProxyUser. */
export type BindingDecision =
  | { action: 'bind'; ownerReferences: OwnerReference[]; annotations: Record<string, string>; userUid: string }
  | { action: 'reconcile'; binding: UserBinding };

/**
 * The bound user's uid, also kept as an annotation: `kubectl delete --cascade=orphan` of the user
 * strips the owner reference but not this, so an orphaned key still knows whose it was.
 */
export const userUidAnnotation = 'ccproxy.io/user-uid';

const userApiVersion = `${group}/${version}`;

/**
 * An AccessKey belongs to its ProxyUser through an ownerReference (so deleting the user deletes
 * its keys by garbage collection, and `blockOwnerDeletion` holds a foreground deletion of the
 * user until they are gone). It is set once the user exists and before any row of the key is
 * written, so every key ever served names the uid of its user; a key whose user is gone —
 * deleted, being deleted, or replaced by a new object of that name — is never served again.
 */
export function userBinding(
  metadata: {
    ownerReferences?: readonly OwnerReference[] | undefined;
    annotations?: Readonly<Record<string, string>> | undefined;
  },
  userName: string,
  user: LiveUser | undefined,
): BindingDecision {
  const references = metadata.ownerReferences;
  const owner = references?.find((r) => r.kind === 'ProxyUser' && r.apiVersion.startsWith(`${group}/`))?.uid;
  const bound = owner ?? metadata.annotations?.[userUidAnnotation];
  if (bound !== undefined)
    return {
      action: 'reconcile',
      binding: {
        userUid: bound,
        userGone: user === undefined || user.terminating || user.uid !== bound,
        // The owner reference is still there: garbage collection deletes the key with its user.
        collected: owner !== undefined,
      },
    };
  // Not bound yet: bind to a live user; without one, the reconcile waits for it (no row is written).
  if (user === undefined || user.terminating) return { action: 'reconcile', binding: { userGone: true } };
  return {
    action: 'bind',
    ownerReferences: [
      ...(references ?? []),
      { apiVersion: userApiVersion, kind: 'ProxyUser', name: userName, uid: user.uid, blockOwnerDeletion: true },
    ],
    annotations: { [userUidAnnotation]: user.uid },
    userUid: user.uid,
  };
}

/**
 * The binding decision for an object of `kind` to the owner its spec names (kinds table
 * `ownedBy`; undefined for a kind that has none), against the owner `ownerOf` knows now. The
 * leader's reconcile (its cache) and the admission webhook (every replica's metadata cache) both
 * decide through this, so a key created through the webhook is bound exactly as the reconcile would.
 */
export function ownerBindingOf(
  kind: Kind,
  object: { metadata: Parameters<typeof userBinding>[0]; spec?: unknown },
  namespace: string,
  ownerOf: (kind: Kind, namespace: string, name: string) => LiveUser | undefined,
): BindingDecision | undefined {
  const owner = kindSpec(kind).ownedBy;
  if (owner === undefined) return undefined;
  const ownerName = kindSpec(kind).references((object.spec ?? {}) as never)[owner] ?? '';
  return userBinding(object.metadata, ownerName, ownerOf(owner, namespace, ownerName));
}
