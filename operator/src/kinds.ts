import {
  deleteAccessKey,
  deleteBedrockKey,
  deleteTeamBudget,
  deleteUser,
  revokeAccessKey,
  type Database,
  type KeyHasher,
  type KeyWrapper,
  type Queryable,
} from '@ccproxy/core';
import type { ReferenceWait } from './reconcile/conditions.ts';
import { reconcileAccessKey, type AccessKeyOutcome, type UserBinding } from './reconcile/reconcile-access-key.ts';
import { reconcileBedrockKey } from './reconcile/reconcile-bedrock-key.ts';
import { reconcileTeamBudget } from './reconcile/reconcile-team-budget.ts';
import { reconcileUser } from './reconcile/reconcile-user.ts';
import type { SecretStore } from './reconcile/secret-store.ts';
import type { AccessKey, BedrockKey, ProxyUser, TeamBudget } from './resources.ts';

/** The custom resources, in the order a source reconciles them (what is referenced first). */
export type Kind = 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'TeamBudget';
/** Any resource of the kinds table. */
export type KindResource = ProxyUser | AccessKey | BedrockKey | TeamBudget;
/** What a resource may reference: another kind, or a Secret. */
export type Referenced = Kind | 'Secret';

/** What a reconcile needs, whichever the source (Kubernetes or the manifests folder). */
export interface ReconcileContext {
  db: Database | Queryable;
  secrets: SecretStore;
  hashKey: KeyHasher;
  wrapper: KeyWrapper;
  rotationGraceSeconds: number;
  publicUrl: string | undefined;
  referenceWait?: ReferenceWait;
  /** AccessKey only: the ProxyUser it is bound to (Kubernetes: its ownerReference). */
  binding?: UserBinding;
  /** AccessKey only: the other live AccessKeys of the namespace naming the same Secret. */
  sharers?: readonly string[];
}

interface KindSpec<R> {
  kind: Kind;
  /** Its Postgres table (rows listed to find orphans, uids kept across syncs). */
  table: 'users' | 'access_keys' | 'bedrock_keys' | 'team_budgets';
  plural: string;
  /** The names it references, by kind: a change of one of them reconciles it again (its dependents). */
  references(spec: Partial<R extends { spec: infer S } ? S : never>): Partial<Record<Referenced, string>>;
  reconcile(resource: R, context: ReconcileContext): Promise<AccessKeyOutcome>;
  /**
   * What goes before the resource may: its rows (an AccessKey's revoked first, so even a failed
   * delete leaves the key dead on every replica).
   */
  cleanUp(db: Queryable, namespace: string, name: string): Promise<void>;
  /** For the status while clean-up waits, and the event when it is done. */
  cleanedUp: { pending: string; done: string };
  /** The kind that owns it (Kubernetes: an ownerReference to the object its spec names, set before any row). */
  ownedBy?: Kind;
  /** Its status also shows the breaker state of its row (from the proxies' notifications). */
  showsBreaker?: boolean;
}

const proxyUser: KindSpec<ProxyUser> = {
  kind: 'ProxyUser',
  table: 'users',
  plural: 'proxyusers',
  references: () => ({}),
  reconcile: async (user, { db }) => ({ status: await reconcileUser(db, user) }),
  cleanUp: deleteUser,
  cleanedUp: { pending: 'removed from the database', done: 'ProxyUser removed from the database.' },
};

const accessKey: KindSpec<AccessKey> = {
  kind: 'AccessKey',
  table: 'access_keys',
  plural: 'accesskeys',
  references: (spec) => ({ ProxyUser: spec.userRef?.name, Secret: spec.secretName }),
  reconcile: (key, context) => reconcileAccessKey(key, context, context.sharers),
  cleanUp: async (db, namespace, name) => {
    await revokeAccessKey(db, namespace, name);
    await deleteAccessKey(db, namespace, name);
  },
  cleanedUp: { pending: 'revoked', done: 'Access key revoked and removed.' },
  ownedBy: 'ProxyUser',
  showsBreaker: true,
};

const bedrockKey: KindSpec<BedrockKey> = {
  kind: 'BedrockKey',
  table: 'bedrock_keys',
  plural: 'bedrockkeys',
  references: (spec) => ({ AccessKey: spec.accessKeyRef?.name, Secret: spec.secretRef?.name }),
  reconcile: async (key, context) => ({ status: await reconcileBedrockKey(key, context) }),
  cleanUp: deleteBedrockKey,
  cleanedUp: { pending: 'removed from the database', done: 'BedrockKey removed from the database.' },
};

const teamBudget: KindSpec<TeamBudget> = {
  kind: 'TeamBudget',
  table: 'team_budgets',
  plural: 'teambudgets',
  references: () => ({}),
  reconcile: async (resource, { db }) => ({ status: await reconcileTeamBudget(db, resource) }),
  cleanUp: deleteTeamBudget,
  cleanedUp: { pending: 'removed from the database', done: 'TeamBudget removed: the team has no budget now.' },
};

/**
 * Per-kind knowledge in one place — its table, how it is reconciled and cleaned up, and what it
 * references (so what depends on what) — iterated by the Kubernetes operator and the local
 * operator alike. Reconcile order: what is referenced first.
 */
export const kinds = {
  ProxyUser: proxyUser,
  AccessKey: accessKey,
  BedrockKey: bedrockKey,
  TeamBudget: teamBudget,
} as const;
export const kindOrder: readonly Kind[] = ['ProxyUser', 'AccessKey', 'BedrockKey', 'TeamBudget'];

/** The table entry of `kind`, typed loosely enough to iterate over all kinds. */
export function kindSpec(kind: Kind): KindSpec<KindResource> {
  return kinds[kind] as unknown as KindSpec<KindResource>;
}
