import { describe, expect, it } from 'vitest';
import { secretRefusal, type SecretFacts, type SecretFor } from '../src/store/ownership.ts';

/** The one ownership decision for Secrets, case by case (the stores only gather the facts). */
describe('secretRefusal', () => {
  const baz: SecretFor = { kind: 'AccessKey', name: 'baz', uid: 'uid-baz' };
  const facts = (extra: Partial<SecretFacts>): SecretFacts => ({
    namespace: 'team-a',
    name: 'baz-key',
    referrers: [],
    ...extra,
  });
  const ours = {
    labels: { 'app.kubernetes.io/managed-by': 'ccproxy-admin' },
    annotations: { 'ccproxy.io/owner': 'AccessKey/baz' },
  };

  it.each<[string, Partial<SecretFacts>, SecretFor, string | undefined]>([
    ['a free name', {}, baz, undefined],
    ['its own Secret', { metadata: ours }, baz, undefined],
    [
      'one the operator generated for it (same uid)',
      {
        metadata: {
          labels: { 'app.kubernetes.io/managed-by': 'ccproxy-operator' },
          annotations: { 'ccproxy.io/owner': 'AccessKey/baz' },
          ownerReferences: [{ kind: 'AccessKey', name: 'baz', uid: 'uid-baz', controller: true }],
        },
      },
      baz,
      undefined,
    ],
    [
      'a hand-written folder Secret',
      { manifestFile: 'team-a/keys.yaml', metadata: ours },
      baz,
      'Secret team-a/baz-key is managed in team-a/keys.yaml; edit it there',
    ],
    [
      'a name another key uses',
      { referrers: ['AccessKey team-a/other'] },
      baz,
      'Secret team-a/baz-key is in the way: it belongs to AccessKey team-a/other, not one the admin created for baz',
    ],
    [
      'a Secret without ccproxy labels',
      { metadata: { annotations: { 'ccproxy.io/owner': 'AccessKey/baz' } } },
      baz,
      'Secret team-a/baz-key is not managed by ccproxy-admin; rotate or change it where it is managed',
    ],
    [
      "the admin's Secret for another resource",
      { metadata: { ...ours, annotations: { 'ccproxy.io/owner': 'BedrockKey/baz' } } },
      baz,
      'Secret team-a/baz-key is in the way: it belongs to BedrockKey team-a/baz, not one the admin created for baz',
    ],
    [
      'a Secret generated for an earlier, deleted resource of the name',
      {
        metadata: {
          ...ours,
          ownerReferences: [{ kind: 'AccessKey', name: 'baz', uid: 'uid-old', controller: true }],
        },
      },
      { kind: 'AccessKey', name: 'baz' },
      'Secret team-a/baz-key is in the way: it was generated for an earlier AccessKey team-a/baz (uid uid-old), since deleted; garbage collection removes it (or delete it)',
    ],
  ])('%s', (_name, extra, owner, expected) => {
    expect(secretRefusal(facts(extra), owner)).toBe(expected);
  });
});
