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
import { judgeAccessKey, type AccessKeyFacts, type UserBinding } from './access-key-policies.ts';
import type { ReferenceWait, ResourceStatus } from './conditions.ts';
import { budgetStatus } from './budget-status.ts';
import { limitsOf } from './limits.ts';
import { refOf } from './object-ref.ts';
import type { SecretStore } from './secret-store.ts';

export type { UserBinding } from './access-key-policies.ts';

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

export interface AccessKeyOutcome {
  status: ResourceStatus;
  /** The usable key, for local mode's start banner only; never logged or stored. */
  key?: string;
}

/**
 * gather → policies → apply. `sharers`: the other AccessKeys of the namespace that name the same
 * Secret (see `accessKeyPolicies` for every rule, in order).
 */
export async function reconcileAccessKey(
  resource: AccessKey,
  deps: AccessKeyDeps,
  sharers: readonly string[] = [],
): Promise<AccessKeyOutcome> {
  const facts = await gather(resource, deps, sharers);
  let verdict = judgeAccessKey(facts);
  if (verdict.write === 'generate') {
    facts.secret = await generateSecret(resource, deps);
    facts.generated = true;
    verdict = judgeAccessKey(facts);
  }
  const { namespace, name } = facts.ref;
  if (verdict.write === 'disable') await disableAccessKey(deps.db, namespace, name);
  if (verdict.write === 'revoke') await revokeAccessKey(deps.db, namespace, name);
  const key = facts.secret?.data.accessKey;
  if (verdict.write !== 'upsert' || key === undefined) return { status: verdict.status };
  await upsertRow(resource, facts, key, deps);
  const status = await withBudget(resource, deps, verdict.status);
  return verdict.reason === 'KeyActive' ? { status, key } : { status };
}

/** Spend against the key's budget, beside its other status fields (none without a budget). */
async function withBudget(resource: AccessKey, deps: AccessKeyDeps, status: ResourceStatus): Promise<ResourceStatus> {
  if (resource.spec.budget === undefined) return status;
  const { namespace, name } = refOf(resource);
  const keyId = await findAccessKeyId(deps.db, namespace, name);
  if (keyId === undefined) return status;
  const budget = await budgetStatus(deps.db, { kind: 'key', id: keyId }, resource.spec.budget);
  return budget === undefined ? status : { ...status, fields: { ...status.fields, budget } };
}

/** The facts the policies judge: the user's row and the Secret (only read when the user is there). */
async function gather(resource: AccessKey, deps: AccessKeyDeps, sharers: readonly string[]): Promise<AccessKeyFacts> {
  const ref = refOf(resource);
  const facts: AccessKeyFacts = {
    ref,
    spec: resource.spec,
    kind: resource.kind,
    sharers,
    user: undefined,
    binding: deps.binding,
    secret: undefined,
    generated: false,
    referenceWait: deps.referenceWait,
  };
  // A conflict decides alone: no database or Secret read for it.
  if (sharers.length > 0) return facts;
  facts.user = await findUser(deps.db, ref.namespace, resource.spec.userRef.name);
  if (facts.user !== undefined) facts.secret = await deps.secrets.read(ref.namespace, resource.spec.secretName);
  return facts;
}

async function upsertRow(resource: AccessKey, facts: AccessKeyFacts, key: string, deps: AccessKeyDeps): Promise<void> {
  const bedrock = resource.spec.bedrock;
  await upsertAccessKey(
    deps.db,
    {
      ...facts.ref,
      userId: facts.user?.id ?? '',
      keyHash: deps.hashKey(key),
      keyPrefix: keyPrefix(key),
      revoked: resource.spec.revoked,
      routing: resource.spec.routing,
      bedrock: {
        region: bedrock?.region ?? null,
        // Unset stays unset: the BedrockKey's spec.api (then InvokeModel) decides when the proxy reads the key.
        api: bedrock?.api ?? null,
        model: bedrock?.model ?? null,
        modelMap: bedrock?.modelMap ?? {},
      },
      limits: limitsOf(resource.spec),
    },
    // A key written into the Secret by its owner rotates with a grace period; a key generated
    // because the Secret was deleted replaces the old one at once — a deleted Secret is a
    // deleted key.
    facts.generated ? 0 : deps.rotationGraceSeconds,
  );
}

/** A new key written to a new Secret, read back: if another writer won the race, its key (and owner) counts. */
async function generateSecret(resource: AccessKey, deps: AccessKeyDeps) {
  const ref = refOf(resource);
  const key = generateAccessKey();
  const data: Record<string, string> = { accessKey: key };
  if (deps.publicUrl !== undefined) data.ANTHROPIC_BASE_URL = baseUrlFor(deps.publicUrl, key);
  await deps.secrets.writeGenerated(ref.namespace, resource.spec.secretName, data, {
    kind: resource.kind,
    name: ref.name,
    uid: ref.uid,
  });
  return deps.secrets.read(ref.namespace, resource.spec.secretName);
}

export function baseUrlFor(publicUrl: string, key: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/ak/${key}`;
}
