import { parseResource, type AccessKey, type BedrockKey, type ProxyUser, type TeamBudget } from '@ccproxy/operator';
import type { SecretFor } from './ownership.ts';

/**
 * The admin's one seam for writes: every change becomes a resource change, so the control
 * plane (the Kubernetes operator, or the local operator over the manifests folder) stays the
 * one thing that touches Postgres rows and keys. Two implementations: `ManifestFolderStore`
 * (local mode) and `KubeResourceStore` (the Kubernetes API). Both write only what is the
 * admin's (see `ownership.ts`); everything else is a `StoreError('conflict')` naming what is
 * in the way.
 */
export type Kind = 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'TeamBudget';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/**
 * Each kind's spec, typed from the operator's own schemas (operator/src/resources.ts), defaults
 * filled: both stores hand out only objects those schemas accepted (the manifests folder through
 * parseResource, the Kubernetes API through the CRDs generated from the same schemas).
 */
export interface SpecOf {
  ProxyUser: ProxyUser['spec'];
  AccessKey: AccessKey['spec'];
  BedrockKey: BedrockKey['spec'];
  TeamBudget: TeamBudget['spec'];
}

/** A resource as the admin sees it: spec as written, status as the operator reported it. */
export interface StoredResource<K extends Kind = Kind> {
  kind: K;
  namespace: string;
  name: string;
  /**
   * Opaque version of the spec for optimistic concurrency: an update naming an older one fails
   * with 409. (Kubernetes: the object's generation; local mode: a digest of the document.)
   */
  resourceVersion: string;
  /** Kubernetes: the object's uid (owner references name it); local resources have none. */
  uid?: string;
  spec: SpecOf[K];
  labels?: Record<string, string>;
  status: { conditions: Condition[]; fields: Record<string, unknown> };
}

/** Narrows a resource of any kind to one kind. */
export const isOfKind = <K extends Kind>(resource: StoredResource, kind: K): resource is StoredResource<K> =>
  resource.kind === kind;

export interface ResourceStore {
  readonly mode: 'local' | 'kubernetes';
  list<K extends Kind>(kind: K): Promise<StoredResource<K>[]>;
  get<K extends Kind>(kind: K, namespace: string, name: string): Promise<StoredResource<K> | undefined>;
  /** Fails with `StoreError('conflict')` when the object exists (local mode: or its file name is taken). */
  create<K extends Kind>(kind: K, namespace: string, name: string, spec: SpecOf[K]): Promise<StoredResource<K>>;
  /**
   * Replaces the spec when `resourceVersion` is still current; else `StoreError('conflict')`.
   * Local mode: also a conflict when the resource lives in a file the admin did not write.
   */
  update<K extends Kind>(
    kind: K,
    namespace: string,
    name: string,
    spec: SpecOf[K],
    resourceVersion: string,
  ): Promise<StoredResource<K>>;
  /** `StoreError('not_found')` when it does not exist; local mode: a conflict in a file not the admin's. */
  delete(kind: Kind, namespace: string, name: string): Promise<void>;
  /**
   * Creates or replaces the Opaque Secret (access keys, Bedrock API keys) of `owner`; a Secret
   * that is not the admin's for `owner` is never written: `StoreError('conflict')` says why.
   * `fresh` (for a resource being created): one that exists is refused too, unless it is an
   * earlier attempt's leftover (ownership.ts `freshRefusal`).
   */
  writeSecret(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: SecretFor,
    options?: { fresh?: boolean },
  ): Promise<void>;
  /** Removes the Secret if it is the admin's for `owner` (else leaves it alone); missing is fine. */
  deleteSecret(namespace: string, name: string, owner: SecretFor): Promise<void>;
  /**
   * What the source of truth holds that nothing uses, each named with where it is: local mode,
   * the manifests the operator's last sync ignored (a document the schemas refuse, a file that
   * does not read whole); Kubernetes, none (the API server refuses a bad spec at admission, and
   * every stored resource has its own conditions).
   */
  ignored(): readonly string[];
}

export class StoreError extends Error {
  readonly reason: 'conflict' | 'not_found' | 'invalid' | 'unavailable';
  constructor(reason: StoreError['reason'], message: string) {
    super(message);
    this.name = 'StoreError';
    this.reason = reason;
  }
}

export const apiVersion = 'ccproxy.io/v1alpha1';

/**
 * The resource schemas' verdict on an object, before anything is written: every store refuses
 * what the API server and the local operator refuse (patterns, lengths and the cross-field
 * rules of @ccproxy/operator's admission table), with the same field-naming message.
 */
export function checkValid(object: unknown): void {
  const parsed = parseResource(object);
  if ('problems' in parsed) throw new StoreError('invalid', parsed.problems.join('; '));
}
