import { notFound } from '../errors.ts';
import type { SecretFor } from './ownership.ts';
import type { Kind, ResourceStore, StoredResource } from './resource-store.ts';

/** The one load-or-404: the resource `namespace/name` of `kind`, or a 404 naming it. */
export async function loadOr404<K extends Kind>(
  store: ResourceStore,
  kind: K,
  ref: { namespace: string; name: string },
): Promise<StoredResource<K>> {
  const resource = await store.get(kind, ref.namespace, ref.name);
  if (resource === undefined) throw notFound(`${kind} ${ref.namespace}/${ref.name}`);
  return resource;
}

/**
 * The one compensating write: the Secret first, then the resource that names it (`write`); if
 * the second write fails the Secret is removed again, so nothing is left half-written, and the
 * failure stands. Never another's Secret: a name in use is a 409 naming its owner (ownership.ts),
 * and never one another request is writing for the same new resource (`fresh`).
 */
export async function writeWithSecret<T>(
  store: ResourceStore,
  secret: { namespace: string; name: string; data: Record<string, string>; owner: SecretFor },
  write: () => Promise<T>,
): Promise<T> {
  // Fresh: a concurrent request creating the same resource gets a 409 here, before it writes anything.
  await store.writeSecret(secret.namespace, secret.name, secret.data, secret.owner, { fresh: true });
  try {
    return await write();
  } catch (error) {
    await store.deleteSecret(secret.namespace, secret.name, secret.owner).catch(() => undefined);
    throw error;
  }
}
