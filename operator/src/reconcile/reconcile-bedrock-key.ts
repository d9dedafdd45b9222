import {
  encryptSecret,
  envelopeKeyId,
  findAccessKeyId,
  findBedrockKeyRow,
  secretFingerprint,
  upsertBedrockKey,
  type KeyWrapper,
  type Queryable,
} from '@ccproxy/core';
import type { BedrockKey } from '../resources.ts';
import { missingReference, ready, type ReferenceWait, type ResourceStatus } from './conditions.ts';
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
 * BedrockKey → `bedrock_keys`: with auth ApiKey, the referenced Secret's API key envelope-encrypted
 * (status shows a fingerprint, never the key); with AwsIdentity, no secret at all (the proxy signs
 * with its own AWS identity).
 */
export async function reconcileBedrockKey(resource: BedrockKey, deps: BedrockKeyDeps): Promise<ResourceStatus> {
  const ref = refOf(resource);
  const { secretRef, accessKeyRef, auth } = resource.spec;
  const api = resource.spec.api ?? null;
  const accessKeyId = await findAccessKeyId(deps.db, ref.namespace, accessKeyRef.name);
  if (accessKeyId === undefined)
    return missingReference(
      deps.referenceWait,
      { waiting: 'WaitingForAccessKey', stalled: 'AccessKeyNotFound' },
      `AccessKey ${ref.namespace}/${accessKeyRef.name} does not exist or is not reconciled.`,
    );
  if (auth === 'AwsIdentity' || secretRef === undefined) {
    await upsertBedrockKey(deps.db, {
      ...ref,
      accessKeyId,
      auth: 'AwsIdentity',
      ciphertext: null,
      fingerprint: null,
      api,
    });
    return ready('AwsIdentity', "Bedrock requests are signed (SigV4) with the proxy's own AWS identity.");
  }
  const apiKey = (await deps.secrets.read(ref.namespace, secretRef.name))?.data[secretRef.key];
  if (apiKey === undefined || apiKey.trim() === '')
    return missingReference(
      deps.referenceWait,
      { waiting: 'WaitingForSecret', stalled: 'SecretNotFound' },
      `Secret ${ref.namespace}/${secretRef.name} has no key ${secretRef.key}.`,
    );
  const fingerprint = secretFingerprint(apiKey.trim());
  const stored = await findBedrockKeyRow(deps.db, ref.namespace, ref.name);
  // Level-triggered resyncs must not call KMS each time: encrypt only what changed (key, owner, or KMS key).
  const current =
    stored !== undefined &&
    stored.auth === 'ApiKey' &&
    stored.ciphertext !== null &&
    stored.fingerprint === fingerprint &&
    stored.accessKeyId === accessKeyId &&
    envelopeKeyId(stored.ciphertext) === deps.wrapper.keyId;
  if (current && stored.api !== api)
    await upsertBedrockKey(deps.db, { ...ref, accessKeyId, ciphertext: stored.ciphertext, fingerprint, api });
  if (current) return ready('Encrypted', `Bedrock API key stored encrypted (${deps.wrapper.keyId}).`, { fingerprint });
  await upsertBedrockKey(deps.db, {
    ...ref,
    accessKeyId,
    ciphertext: await encryptSecret(apiKey.trim(), deps.wrapper),
    fingerprint,
    api,
  });
  return ready('Encrypted', `Bedrock API key stored encrypted (${deps.wrapper.keyId}).`, { fingerprint });
}
