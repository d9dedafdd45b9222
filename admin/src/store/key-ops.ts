import { generateAccessKey, keyPrefix } from '@ccproxy/core';
import type { AccessKey } from '@ccproxy/operator';
import { conflict } from '../errors.ts';
import { derivedName } from '../list.ts';
import { accessKeyView } from '../routes/views.ts';
import { ownerOf } from './ownership.ts';
import { writeWithSecret } from './resource-ops.ts';
import type { ResourceStore, StoredResource } from './resource-store.ts';

/**
 * The one way a key is issued or rotated, for the admin's routes and the developers' own
 * (self-service.ts): the admin generates the key, writes it into the key's Secret (the
 * operator adopts it) and hands it back for that one answer; it is never stored in clear
 * elsewhere, never logged.
 */
export type BaseUrlFor = (key: string) => string;

export const baseUrlMaker =
  (publicUrl: string): BaseUrlFor =>
  (key) =>
    `${publicUrl.replace(/\/+$/, '')}/ak/${key}`;

/** What issue and rotate answer: the record, the key once, its ANTHROPIC_BASE_URL. */
const shownOnce = (resource: StoredResource<'AccessKey'>, key: string, baseUrlFor: BaseUrlFor) => ({
  ...accessKeyView(resource),
  keyPrefix: keyPrefix(key),
  accessKey: key,
  baseUrl: baseUrlFor(key),
});

/** Issues `namespace/name` with `spec` minus its Secret name (`<name>-key`); undone if the AccessKey cannot be written. */
export async function issueKey(
  store: ResourceStore,
  baseUrlFor: BaseUrlFor,
  target: { namespace: string; name: string },
  spec: Omit<AccessKey['spec'], 'secretName'>,
) {
  if ((await store.get('AccessKey', target.namespace, target.name)) !== undefined)
    throw conflict(`AccessKey ${target.namespace}/${target.name} already exists`);
  const secretName = derivedName(target.name, 'key');
  const key = generateAccessKey();
  const created = await writeWithSecret(
    store,
    {
      namespace: target.namespace,
      name: secretName,
      data: { accessKey: key, ANTHROPIC_BASE_URL: baseUrlFor(key) },
      owner: { kind: 'AccessKey', name: target.name },
    },
    () => store.create('AccessKey', target.namespace, target.name, { ...spec, secretName }),
  );
  return shownOnce(created, key, baseUrlFor);
}

/** Rotate: a new key in the Secret; the operator keeps the old one valid for the grace period. */
export async function rotateKey(store: ResourceStore, baseUrlFor: BaseUrlFor, current: StoredResource<'AccessKey'>) {
  const key = generateAccessKey();
  // A Secret the admin may not write (hand-written, another's) is a 409, never a 200 that changes nothing.
  await store.writeSecret(
    current.namespace,
    current.spec.secretName,
    { accessKey: key, ANTHROPIC_BASE_URL: baseUrlFor(key) },
    ownerOf(current),
  );
  return shownOnce(current, key, baseUrlFor);
}
