import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import type { LocalOperator } from '@ccproxy/operator';
import { hashKey } from './kube-fixture.ts';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const user = `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ann, namespace: team-a }\nspec: {}\n`;
const accessKey = `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: laptop, namespace: team-a }\nspec: { userRef: { name: ann }, secretName: laptop-key, routing: PlanOnly }\n`;
const secret = (key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: laptop-key, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;
// The classic slip: the plain key under data: instead of stringData: (not base64: refused by the schema).
const secretTypo = (key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: laptop-key, namespace: team-a }\ndata: { accessKey: ${key} }\n`;
const firstKey = 'ak_attack_first_0123456789abcdefghijklmnopq';
const secondKey = 'ak_attack_second_0123456789abcdefghijklmnop';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a refused Secret in the manifests folder (local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    setup = await startLocalOperator('local-refused-secret');
    ({ manifests, db, operator } = setup);
  });
  afterAll(async () => setup?.stop());
  const row = async () =>
    (
      await db.query<{ key_hash: string; status: string }>(
        "SELECT key_hash, status FROM access_keys WHERE namespace = 'team-a' AND name = 'laptop'",
      )
    )[0];

  it('a typo in the first file’s Secret never switches the key to the ignored copy in a later file', async () => {
    await writeFile(join(manifests, 'a-team.yaml'), [user, accessKey, secret(firstKey)].join('---\n'));
    await writeFile(join(manifests, 'b-copy.yaml'), secret(secondKey));
    const r1 = await operator.sync();
    expect(r1.problems.join('\n')).toContain('b-copy.yaml: Secret/team-a/laptop-key is also in a-team.yaml');
    expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active' });

    await writeFile(join(manifests, 'a-team.yaml'), [user, accessKey, secretTypo(firstKey)].join('---\n'));
    await sleep(700);
    await operator.sync();
    // Rule: the first file defines the Secret; its refused copy must not hand the name to b-copy.yaml.
    expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active' });
  });

  it('a typo in a brought Secret with no other copy keeps the key: nothing is generated in its place', async () => {
    await unlink(join(manifests, 'b-copy.yaml'));
    await writeFile(join(manifests, 'a-team.yaml'), [user, accessKey, secret(firstKey)].join('---\n'));
    await operator.sync();
    expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active' });
    await writeFile(join(manifests, 'a-team.yaml'), [user, accessKey, secretTypo(firstKey)].join('---\n'));
    await sleep(700);
    const r = await operator.sync();
    // The AccessKey says why, naming the Secret; its row is as it was.
    expect(JSON.stringify(r.statuses.get('AccessKey/team-a/laptop'))).toContain(
      'Secret team-a/laptop-key in the manifests folder is refused',
    );
    expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active' });
  });
});
