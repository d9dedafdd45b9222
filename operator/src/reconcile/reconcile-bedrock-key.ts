import {
  encryptSecret,
  findAccessKeyId,
  findBedrockKeyRow,
  secretFingerprint,
  upsertBedrockKey,
  type KeyWrapper,
  type Queryable,
} from '@ccproxy/core';
import type { BedrockKey } from '../resources.ts';
import { judgeBedrockKey, type BedrockKeyFacts } from './bedrock-key-policies.ts';
import type { ReferenceWait, ResourceStatus } from './conditions.ts';
import { refOf } from './object-ref.ts';
import type { SecretStore } from './secret-store.ts';

export interface BedrockKeyDeps {
  db: Queryable;
  secrets: SecretStore;
  wrapper: KeyWrapper;
  /** How long a missing AccessKey or Secret is waited for before the key is Stalled (undefined: not at all). */
  referenceWait?: ReferenceWait;
}

/**
 * BedrockKey → `bedrock_keys`, gather → policies (`bedrockKeyPolicies`) → apply: with auth
 * ApiKey, the referenced Secret's API key envelope-encrypted (status shows a fingerprint, never
 * the key); with AwsIdentity, no secret at all.
 */
export async function reconcileBedrockKey(resource: BedrockKey, deps: BedrockKeyDeps): Promise<ResourceStatus> {
  const facts = await gather(resource, deps);
  const verdict = judgeBedrockKey(facts);
  const { ref } = facts;
  const api = resource.spec.api ?? null;
  if (verdict.write === 'upsertAwsIdentity')
    await upsertBedrockKey(deps.db, {
      ...ref,
      accessKeyId: facts.accessKeyId ?? '',
      auth: 'AwsIdentity',
      ciphertext: null,
      fingerprint: null,
      api,
    });
  if (verdict.write === 'encrypt' && facts.apiKey !== undefined)
    await upsertBedrockKey(deps.db, {
      ...ref,
      accessKeyId: facts.accessKeyId ?? '',
      ciphertext: await encryptSecret(facts.apiKey, deps.wrapper),
      fingerprint: facts.fingerprint ?? '',
      api,
    });
  if (verdict.write === 'updateApi' && facts.stored?.ciphertext != null)
    await upsertBedrockKey(deps.db, {
      ...ref,
      accessKeyId: facts.accessKeyId ?? '',
      ciphertext: facts.stored.ciphertext,
      fingerprint: facts.fingerprint ?? '',
      api,
    });
  return verdict.status;
}

/** Each read only when the policies before it could pass (as the reconcile read them one by one). */
async function gather(resource: BedrockKey, deps: BedrockKeyDeps): Promise<BedrockKeyFacts> {
  const ref = refOf(resource);
  const { secretRef, accessKeyRef, auth } = resource.spec;
  const facts: BedrockKeyFacts = {
    ref,
    spec: resource.spec,
    accessKeyId: await findAccessKeyId(deps.db, ref.namespace, accessKeyRef.name),
    apiKey: undefined,
    fingerprint: undefined,
    stored: undefined,
    wrapperKeyId: deps.wrapper.keyId,
    referenceWait: deps.referenceWait,
  };
  if (facts.accessKeyId === undefined || auth === 'AwsIdentity' || secretRef === undefined) return facts;
  const apiKey = (await deps.secrets.read(ref.namespace, secretRef.name))?.data[secretRef.key]?.trim();
  if (apiKey === undefined || apiKey === '') return facts;
  facts.apiKey = apiKey;
  facts.fingerprint = secretFingerprint(apiKey);
  facts.stored = await findBedrockKeyRow(deps.db, ref.namespace, ref.name);
  return facts;
}
