import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { readManifestFolder, type LocalOperator } from '@ccproxy/operator';
import { hashKey } from './kube-fixture.ts';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const user = `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ann, namespace: team-a }\nspec: {}\n`;
const accessKey = (routing: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: laptop, namespace: team-a }\nspec: { userRef: { name: ann }, secretName: laptop-key, routing: ${routing} }\n`;
const secret = (key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: laptop-key, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;
const firstKey = 'ak_duplicate_first_0123456789abcdefghijklmno';
const secondKey = 'ak_duplicate_second_0123456789abcdefghijklmn';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One definition per resource in the manifests folder (local mode): the same AccessKey (or
 * Secret) in two files is the first file's, in name order, and the other copy is named as
 * ignored, instead of both being applied in turn each sync. A resource moved from one file to
 * another keeps its key throughout. Real files, real Postgres.
 */
describe('a resource defined in two manifest files (local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;

  beforeAll(async () => {
    setup = await startLocalOperator('local-duplicates');
    ({ manifests, db, operator } = setup);
  });
  afterAll(async () => setup?.stop());

  const row = async () =>
    (
      await db.query<{ key_hash: string; status: string; routing: string }>(
        "SELECT key_hash, status, routing FROM access_keys WHERE namespace = 'team-a' AND name = 'laptop'",
      )
    )[0];

  it('keeps the first file’s copy, names the other, and holds still across syncs', async () => {
    await writeFile(join(manifests, 'a-team.yaml'), [user, accessKey('PlanOnly'), secret(firstKey)].join('---\n'));
    await writeFile(join(manifests, 'b-copy.yaml'), [accessKey('BedrockOnly'), secret(secondKey)].join('---\n'));
    for (let sync = 0; sync < 3; sync += 1) {
      const report = await operator.sync();
      expect(report.statuses.get('AccessKey/team-a/laptop')?.conditions.find((c) => c.type === 'Ready')?.status).toBe(
        'True',
      );
      expect(report.problems).toEqual(
        expect.arrayContaining([
          expect.stringContaining('b-copy.yaml: AccessKey/team-a/laptop is also in a-team.yaml; this copy is ignored'),
          expect.stringContaining('b-copy.yaml: Secret/team-a/laptop-key is also in a-team.yaml; this copy is ignored'),
        ]),
      );
      // The first file's spec and key, every time: not the two applied in turn.
      expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active', routing: 'PlanOnly' });
    }
    const snapshot = await readManifestFolder(manifests);
    expect(snapshot.accessKeys.map((key) => key.spec.routing)).toEqual(['PlanOnly']);
    expect(snapshot.secrets).toHaveLength(1);
  });

  it('a resource moved to another file keeps its key: never revoked, never replaced', async () => {
    await unlink(join(manifests, 'b-copy.yaml'));
    await operator.sync();
    const before = await row();
    // The move: the key and its Secret go to a new file, then leave the old one.
    await writeFile(join(manifests, 'c-moved.yaml'), [accessKey('PlanOnly'), secret(firstKey)].join('---\n'));
    await operator.sync();
    await writeFile(join(manifests, 'a-team.yaml'), user);
    for (const wait of [0, 300, 700]) {
      await sleep(wait);
      await operator.sync();
      expect(await row()).toEqual(before);
    }
    const settled = await operator.sync();
    expect(settled.problems).toEqual([]);
    expect(await row()).toEqual({ key_hash: hashKey(firstKey), status: 'active', routing: 'PlanOnly' });
  });
});
