import { describe, expect, it } from 'vitest';
import { envelopeKeyId } from '@ccproxy/core';
import { accessKeyPolicies, judgeAccessKey, type AccessKeyFacts } from '../src/reconcile/access-key-policies.ts';
import { bedrockKeyPolicies, judgeBedrockKey, type BedrockKeyFacts } from '../src/reconcile/bedrock-key-policies.ts';
import { userPolicies } from '../src/reconcile/reconcile-user.ts';
import { runPolicies } from '../src/reconcile/policies.ts';
import { kindOrder, kinds } from '../src/kinds.ts';

/**
 * The reconcile policies as a table: facts in, verdict (reason, failed, the write the apply step
 * does) and conditions out. No Postgres, no API server: every rule of every kind is a row here,
 * and a rule that changes shows up as a row that fails.
 */
const key = 'ak_0123456789abcdefghijklmnopqrstuv';
const ref = { namespace: 'team', name: 'laptop', uid: 'uid-1' };
const spec = { userRef: { name: 'alice' }, secretName: 'laptop-key', revoked: false, routing: 'PlanOnly' };
const user = { id: '1', uid: 'user-uid', suspended: false };
const young = { ageMs: 1_000, limitMs: 60_000 };
const old = { ageMs: 120_000, limitMs: 60_000 };
const accessKey = (over: Partial<AccessKeyFacts> = {}): AccessKeyFacts => ({
  ref,
  spec: spec as AccessKeyFacts['spec'],
  kind: 'AccessKey',
  sharers: [],
  user,
  binding: { userUid: 'user-uid' },
  secret: { data: { accessKey: key } },
  generated: false,
  referenceWait: young,
  ...over,
});
const conditions = (status: { conditions: Array<{ type: string; status: string }> }) =>
  status.conditions.map((c) => `${c.type}=${c.status}`).join(' ');

const ready = 'Ready=True Reconciling=False Stalled=False';
const stalled = 'Ready=False Reconciling=False Stalled=True';
const waiting = 'Ready=False Reconciling=True Stalled=False';
const inactive = 'Ready=False Reconciling=False Stalled=False';

describe('AccessKey policies', () => {
  const rows: Array<[string, Partial<AccessKeyFacts>, string, boolean, string, string]> = [
    ['everything in place', {}, 'KeyActive', false, 'upsert', ready],
    ['another AccessKey names the Secret', { sharers: ['desktop'] }, 'SecretConflict', true, 'disable', stalled],
    [
      'the bound user was deleted',
      { user: undefined, binding: { userUid: 'user-uid', userGone: true } },
      'UserDeleted',
      true,
      'disable',
      stalled,
    ],
    [
      'the bound user was deleted, the key still owned by it (the cascade is under way)',
      { user: undefined, binding: { userUid: 'user-uid', userGone: true, collected: true } },
      'UserDeleting',
      false,
      'disable',
      inactive,
    ],
    [
      'a new user of the name (another uid)',
      { user: { ...user, uid: 'other' } },
      'UserDeleted',
      true,
      'disable',
      stalled,
    ],
    ['no user yet, young', { user: undefined, binding: undefined }, 'WaitingForUser', true, 'revoke', waiting],
    [
      'no user, past the wait',
      { user: undefined, binding: undefined, referenceWait: old },
      'UserNotFound',
      true,
      'revoke',
      stalled,
    ],
    ['user going, not bound yet', { binding: { userGone: true } }, 'WaitingForUser', true, 'revoke', waiting],
    ['no Secret yet', { secret: undefined }, 'GeneratingKey', false, 'generate', ready],
    [
      'generated, but the read back found none',
      { secret: undefined, generated: true },
      'InvalidKey',
      true,
      'none',
      stalled,
    ],
    [
      'Secret of another AccessKey',
      { secret: { data: { accessKey: key }, owner: { kind: 'AccessKey', name: 'other' } } },
      'SecretNotOwned',
      true,
      'disable',
      stalled,
    ],
    [
      'Secret of an earlier AccessKey of the name',
      { secret: { data: { accessKey: key }, owner: { kind: 'AccessKey', name: 'laptop', uid: 'uid-0' } } },
      'SecretNotOwned',
      true,
      'disable',
      stalled,
    ],
    [
      'own generated Secret',
      { secret: { data: { accessKey: key }, owner: { kind: 'AccessKey', name: 'laptop', uid: 'uid-1' } } },
      'KeyActive',
      false,
      'upsert',
      ready,
    ],
    ['key too short', { secret: { data: { accessKey: 'short' } } }, 'InvalidKey', true, 'none', stalled],
    // A key holding a URL delimiter (or a trailing newline) is refused, however long: one such key
    // per character, each otherwise a fine bring-your-own key.
    ...[';', ',', '=', '&', '#', '?', '%', '/', ' ', '\n', '+', ':', '@', 'é'].map(
      (char): [string, Partial<AccessKeyFacts>, string, boolean, string, string] => [
        `key with ${JSON.stringify(char)}`,
        { secret: { data: { accessKey: `${key.slice(0, 20)}${char}${key.slice(20)}` } } },
        'InvalidKey',
        true,
        'none',
        stalled,
      ],
    ),
    [
      'key of every unreserved URL character',
      { secret: { data: { accessKey: 'AZaz09._~-AZaz09._~-AZaz09' } } },
      'KeyActive',
      false,
      'upsert',
      ready,
    ],
    ['revoked', { spec: { ...spec, revoked: true } as AccessKeyFacts['spec'] }, 'Revoked', false, 'upsert', inactive],
    ['user suspended', { user: { ...user, suspended: true } }, 'UserSuspended', false, 'upsert', inactive],
    [
      'conflict beats a deleted user',
      { sharers: ['desktop'], binding: { userUid: 'user-uid', userGone: true } },
      'SecretConflict',
      true,
      'disable',
      stalled,
    ],
    [
      'conflict beats a missing user',
      { sharers: ['desktop'], user: undefined },
      'SecretConflict',
      true,
      'disable',
      stalled,
    ],
  ];
  it.each(rows)('%s → %s', (_name, facts, reason, failed, write, expected) => {
    const verdict = judgeAccessKey(accessKey(facts));
    expect({ reason: verdict.reason, failed: verdict.failed, write: verdict.write }).toEqual({ reason, failed, write });
    expect(conditions(verdict.status)).toBe(expected);
  });

  it('a refused key is told apart by its rule, named in the message, and never quoted', () => {
    const message = (value: string) =>
      judgeAccessKey(accessKey({ secret: { data: { accessKey: value } } })).status.conditions.find(
        (c) => c.type === 'Stalled',
      )?.message;
    const delimited = 'k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6';
    expect(message(delimited)).toBe(
      'Secret laptop-key holds an accessKey with characters other than A-Z, a-z, 0-9 and . _ ~ - (the only ones an access key may hold).',
    );
    expect(message('short')).toBe('Secret laptop-key holds an accessKey shorter than 24 characters.');
  });

  it('carries the key prefix, never the key, and a wait that ends in a retry', () => {
    const active = judgeAccessKey(accessKey());
    expect(active.status.fields).toEqual({ keyPrefix: key.slice(0, 10) });
    expect(JSON.stringify(active)).not.toContain(key);
    expect(judgeAccessKey(accessKey({ user: undefined, binding: undefined })).status.retryInMs).toBe(59_100);
  });

  it('every policy decides at least one row of the table (none is dead)', () => {
    const decided = new Set(rows.map(([, facts]) => accessKeyPolicies.findIndex((p) => p(accessKey(facts)))));
    expect([...decided].sort((a, b) => a - b)).toEqual(accessKeyPolicies.map((_, i) => i));
  });
});

describe('BedrockKey policies', () => {
  const facts = (over: Partial<BedrockKeyFacts> = {}): BedrockKeyFacts => ({
    ref,
    spec: {
      accessKeyRef: { name: 'laptop' },
      secretRef: { name: 'bedrock', key: 'apiKey' },
      auth: 'ApiKey',
    } as BedrockKeyFacts['spec'],
    accessKeyId: '7',
    apiKey: 'bedrock-api-key',
    fingerprint: 'sha256:0123456789abcdef',
    stored: undefined,
    wrapperKeyId: 'kms-key',
    referenceWait: young,
    ...over,
  });
  const envelope = (keyId: string) => Buffer.from(JSON.stringify({ kid: keyId }));
  it.each([
    ['a new API key', {}, 'Encrypted', 'encrypt', ready],
    ['no AccessKey row yet', { accessKeyId: undefined }, 'WaitingForAccessKey', 'none', waiting],
    [
      'no AccessKey row, past the wait',
      { accessKeyId: undefined, referenceWait: old },
      'AccessKeyNotFound',
      'none',
      stalled,
    ],
    [
      'AwsIdentity',
      { spec: { accessKeyRef: { name: 'laptop' }, auth: 'AwsIdentity' } as BedrockKeyFacts['spec'] },
      'AwsIdentity',
      'upsertAwsIdentity',
      ready,
    ],
    ['no key in the Secret', { apiKey: undefined }, 'WaitingForSecret', 'none', waiting],
    [
      'no key in the Secret, past the wait',
      { apiKey: undefined, referenceWait: old },
      'SecretNotFound',
      'none',
      stalled,
    ],
  ] as Array<[string, Partial<BedrockKeyFacts>, string, string, string]>)(
    '%s → %s',
    (_name, over, reason, write, expected) => {
      const verdict = judgeBedrockKey(facts(over));
      expect({ reason: verdict.reason, write: verdict.write }).toEqual({ reason, write });
      expect(conditions(verdict.status)).toBe(expected);
    },
  );

  it('encrypts again only when the key, its AccessKey or the KMS key changed', () => {
    const sealed = envelope('kms-key');
    // The test's envelope must read as the core reads one, or the rows below prove nothing.
    expect(envelopeKeyId(sealed)).toBe('kms-key');
    const stored = {
      auth: 'ApiKey',
      fingerprint: 'sha256:0123456789abcdef',
      accessKeyId: '7',
      ciphertext: sealed,
      api: null,
    };
    expect(judgeBedrockKey(facts({ stored })).write).toBe('none');
    expect(judgeBedrockKey(facts({ stored: { ...stored, fingerprint: 'sha256:other' } })).write).toBe('encrypt');
    expect(judgeBedrockKey(facts({ stored: { ...stored, accessKeyId: '8' } })).write).toBe('encrypt');
    expect(judgeBedrockKey(facts({ stored, wrapperKeyId: 'new-kms-key' })).write).toBe('encrypt');
    // A changed default Bedrock API alone rewrites the row without a KMS call.
    expect(judgeBedrockKey(facts({ stored: { ...stored, api: 'Converse' } })).write).toBe('updateApi');
    expect(bedrockKeyPolicies).toHaveLength(4);
  });
});

describe('ProxyUser policies', () => {
  it.each([
    [false, 'Reconciled'],
    [true, 'Suspended'],
  ])('suspended=%s → %s, Ready, the row written', (suspended, reason) => {
    const verdict = runPolicies(userPolicies, { spec: { suspended } as never });
    expect({ reason: verdict.reason, failed: verdict.failed, write: verdict.write }).toEqual({
      reason,
      failed: false,
      write: 'upsert',
    });
  });
});

describe('the kinds table', () => {
  it('names every kind once, in reference order, with its table, plural and references', () => {
    expect(kindOrder).toEqual(['ProxyUser', 'AccessKey', 'BedrockKey', 'TeamBudget']);
    expect(kindOrder.map((kind) => [kinds[kind].table, kinds[kind].plural])).toEqual([
      ['users', 'proxyusers'],
      ['access_keys', 'accesskeys'],
      ['bedrock_keys', 'bedrockkeys'],
      ['team_budgets', 'teambudgets'],
    ]);
    expect(kinds.TeamBudget.references({})).toEqual({});
    expect(kinds.AccessKey.references({ userRef: { name: 'alice' }, secretName: 's' })).toEqual({
      ProxyUser: 'alice',
      Secret: 's',
    });
    expect(
      kinds.BedrockKey.references({ accessKeyRef: { name: 'laptop' }, secretRef: { name: 'b', key: 'k' } }),
    ).toEqual({
      AccessKey: 'laptop',
      Secret: 'b',
    });
    // What references something is reconciled after it: a kind references only earlier kinds.
    for (const kind of kindOrder)
      for (const referenced of Object.keys(
        kinds[kind].references({ userRef: { name: 'x' }, accessKeyRef: { name: 'x' }, secretName: 'x' } as never),
      ))
        if (referenced !== 'Secret')
          expect(kindOrder.indexOf(referenced as never)).toBeLessThan(kindOrder.indexOf(kind));
  });
});
