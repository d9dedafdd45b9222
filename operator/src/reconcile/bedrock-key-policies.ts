import { envelopeKeyId } from '@ccproxy/core';
import type { BedrockKey } from '../resources.ts';
import { missingReference, ready, type ReferenceWait } from './conditions.ts';
import { runPolicies, verdict, type Policy, type Verdict } from './policies.ts';

/**
 * What the apply step writes: the AwsIdentity row, a fresh envelope of the API key, only the
 * default Bedrock API (`spec.api`, the envelope kept: no KMS call), or nothing.
 */
export type BedrockKeyWrite = 'upsertAwsIdentity' | 'encrypt' | 'updateApi' | 'none';

export interface BedrockKeyFacts {
  ref: { namespace: string; name: string; uid: string };
  spec: BedrockKey['spec'];
  /** The AccessKey's row id, once it is reconciled. */
  accessKeyId: string | undefined;
  /** The API key from the Secret, trimmed (undefined: no such Secret or key, or blank). */
  apiKey: string | undefined;
  /** Its fingerprint (`secretFingerprint`), when there is one. */
  fingerprint: string | undefined;
  /** The stored row, as far as deciding whether to encrypt again needs it. */
  stored:
    | { auth: string; fingerprint: string | null; accessKeyId: string; ciphertext: Buffer | null; api: string | null }
    | undefined;
  /** The KMS key envelopes are made with now. */
  wrapperKeyId: string;
  referenceWait: ReferenceWait | undefined;
}

type P = Policy<BedrockKeyFacts, BedrockKeyWrite>;

const accessKeyMissing: P = ({ ref, spec, accessKeyId, referenceWait }) =>
  accessKeyId !== undefined
    ? undefined
    : verdict(
        missingReference(
          referenceWait,
          { waiting: 'WaitingForAccessKey', stalled: 'AccessKeyNotFound' },
          `AccessKey ${ref.namespace}/${spec.accessKeyRef.name} does not exist or is not reconciled.`,
        ),
        'none',
      );

/** AwsIdentity: no secret at all (the proxy signs with its own AWS identity). */
const awsIdentity: P = ({ spec }) =>
  spec.auth === 'AwsIdentity' || spec.secretRef === undefined
    ? verdict(
        ready('AwsIdentity', "Bedrock requests are signed (SigV4) with the proxy's own AWS identity."),
        'upsertAwsIdentity',
      )
    : undefined;

const secretMissing: P = ({ ref, spec, apiKey, referenceWait }) =>
  apiKey !== undefined
    ? undefined
    : verdict(
        missingReference(
          referenceWait,
          { waiting: 'WaitingForSecret', stalled: 'SecretNotFound' },
          `Secret ${ref.namespace}/${spec.secretRef?.name ?? ''} has no key ${spec.secretRef?.key ?? ''}.`,
        ),
        'none',
      );

/** Level-triggered resyncs must not call KMS each time: encrypt only what changed (key, owner, or KMS key). */
const encrypted: P = (facts) => {
  const { stored, fingerprint = '' } = facts;
  const current =
    stored !== undefined &&
    stored.auth === 'ApiKey' &&
    stored.ciphertext !== null &&
    stored.fingerprint === fingerprint &&
    stored.accessKeyId === facts.accessKeyId &&
    envelopeKeyId(stored.ciphertext) === facts.wrapperKeyId;
  const write = !current ? 'encrypt' : stored.api !== (facts.spec.api ?? null) ? 'updateApi' : 'none';
  return verdict(
    ready('Encrypted', `Bedrock API key stored encrypted (${facts.wrapperKeyId}).`, { fingerprint }),
    write,
  );
};

export const bedrockKeyPolicies: readonly P[] = [accessKeyMissing, awsIdentity, secretMissing, encrypted];

export const judgeBedrockKey = (facts: BedrockKeyFacts): Verdict<BedrockKeyWrite> =>
  runPolicies(bedrockKeyPolicies, facts);
