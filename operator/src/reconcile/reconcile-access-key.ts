import {
  findUser,
  generateAccessKey,
  keyPrefix,
  revokeAccessKey,
  upsertAccessKey,
  type KeyHasher,
  type Queryable,
} from '@ccproxy/core';
import type { AccessKey } from '../resources.ts';
import { inactive, ready, stalled, type ResourceStatus } from './conditions.ts';
import { refOf } from './object-ref.ts';
import type { SecretStore } from './secret-store.ts';

export interface AccessKeyDeps {
  db: Queryable;
  secrets: SecretStore;
  hashKey: KeyHasher;
  rotationGraceSeconds: number;
  /** Base URL users reach (CCPROXY_PUBLIC_URL); when known, generated Secrets carry ANTHROPIC_BASE_URL. */
  publicUrl: string | undefined;
}

export interface AccessKeyOutcome {
  status: ResourceStatus;
  /** The usable key, for local mode's start banner only; never logged or stored. */
  key?: string;
}

/** Bring-your-own keys shorter than this are too guessable to accept. */
const minimumKeyLength = 24;

export async function reconcileAccessKey(resource: AccessKey, deps: AccessKeyDeps): Promise<AccessKeyOutcome> {
  const ref = refOf(resource);
  const user = await findUser(deps.db, ref.namespace, resource.spec.userRef.name);
  const userId = user?.id;
  if (userId === undefined) {
    await revokeAccessKey(deps.db, ref.namespace, ref.name);
    return {
      status: stalled('UserNotFound', `ProxyUser ${ref.namespace}/${resource.spec.userRef.name} does not exist.`),
    };
  }
  const key = await currentKey(resource, deps);
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
        api: bedrock?.api ?? 'Converse',
        model: bedrock?.model ?? null,
        modelMap: bedrock?.modelMap ?? {},
      },
    },
    deps.rotationGraceSeconds,
  );
  const fields = { keyPrefix: keyPrefix(key) };
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

/** The key in the named Secret (adopted), or a newly generated one written to a new Secret. */
async function currentKey(resource: AccessKey, deps: AccessKeyDeps): Promise<string | undefined> {
  const ref = refOf(resource);
  const existing = await deps.secrets.read(ref.namespace, resource.spec.secretName);
  if (existing !== undefined) return existing.accessKey;
  const key = generateAccessKey();
  const data: Record<string, string> = { accessKey: key };
  if (deps.publicUrl !== undefined) data.ANTHROPIC_BASE_URL = baseUrlFor(deps.publicUrl, key);
  await deps.secrets.writeGenerated(ref.namespace, resource.spec.secretName, data, {
    kind: resource.kind,
    name: ref.name,
    uid: ref.uid,
  });
  // Read back: if another writer won the race, its key is the one that counts.
  return (await deps.secrets.read(ref.namespace, resource.spec.secretName))?.accessKey;
}

export function baseUrlFor(publicUrl: string, key: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/ak/${key}`;
}
