import { rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import type { LocalOperator } from '@ccproxy/operator';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const user = (ns: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ann, namespace: ${ns} }\nspec: {}\n`;
const accessKey = (ns: string, extra = '') =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: laptop, namespace: ${ns} }\nspec: { userRef: { name: ann }, secretName: laptop-key${extra} }\n`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the first file’s copy, unreadable or refused, still holds its resource (local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    setup = await startLocalOperator('local-first-copy');
    ({ manifests, db, operator } = setup);
  });
  afterAll(async () => setup?.stop());
  const row = async (ns: string) =>
    (
      await db.query<{ status: string; key_hash: string; uid: string }>(
        "SELECT status, key_hash, uid FROM access_keys WHERE namespace = $1 AND name = 'laptop'",
        [ns],
      )
    )[0];

  it('a syntax error in the first file’s copy never hands the key to the ignored later copy (revoked: true)', async () => {
    await writeFile(join(manifests, 'a-team.yaml'), [user('team-a'), accessKey('team-a')].join('---\n'));
    await writeFile(join(manifests, 'b-stale.yaml'), accessKey('team-a', ', revoked: true'));
    const r1 = await operator.sync();
    expect(r1.problems.join('\n')).toContain('b-stale.yaml: AccessKey/team-a/laptop is also in a-team.yaml');
    expect((await row('team-a'))?.status).toBe('active');
    // A typo that breaks the YAML of the key's document (an unclosed flow mapping).
    await writeFile(
      join(manifests, 'a-team.yaml'),
      [user('team-a'), accessKey('team-a').replace('secretName: laptop-key }', 'secretName: laptop-key')].join('---\n'),
    );
    await sleep(700);
    const r2 = await operator.sync();
    // The file stands as it was last read whole: still the first copy, the syntax error named.
    expect(r2.problems.join('\n')).toContain('a-team.yaml (document 2)');
    expect(r2.problems.join('\n')).toContain('b-stale.yaml: AccessKey/team-a/laptop is also in a-team.yaml');
    expect((await row('team-a'))?.status).toBe('active');
  });

  it('a refused copy whose namespace is a YAML number stays that namespace’s (Stalled, its row kept), never default/…', async () => {
    await unlink(join(manifests, 'a-team.yaml'));
    await unlink(join(manifests, 'b-stale.yaml'));
    await writeFile(join(manifests, 'n-2024.yaml'), [user('"2024"'), accessKey('"2024"')].join('---\n'));
    await operator.sync();
    expect((await row('2024'))?.status).toBe('active');
    await writeFile(join(manifests, 'n-2024.yaml'), [user('"2024"'), accessKey('2024')].join('---\n'));
    await sleep(700);
    const r = await operator.sync();
    expect([...r.statuses.keys()]).not.toContain('AccessKey/default/laptop');
    expect(r.statuses.get('AccessKey/2024/laptop')?.conditions.find((c) => c.type === 'Ready')?.reason).toBe(
      'InvalidSpec',
    );
    // A refused document must keep what its last valid version wrote (Stalled, not deleted).
    expect((await row('2024'))?.status).toBe('active');
  });

  it('a file first seen broken (a rename) and fixed within the window keeps its key: nothing is pruned meanwhile', async () => {
    await unlink(join(manifests, 'n-2024.yaml'));
    const whole = [user('team-c'), accessKey('team-c')].join('---\n');
    await writeFile(join(manifests, 'c.yaml'), whole);
    await operator.sync();
    const before = await row('team-c');
    expect(before?.status).toBe('active');
    await writeFile(join(manifests, 'c.yaml'), `${whole}oops: [\n`);
    await sleep(700);
    await operator.sync();
    // Renamed while broken: its first read under the new name is a broken one.
    await rename(join(manifests, 'c.yaml'), join(manifests, 'd.yaml'));
    await operator.sync();
    await sleep(700);
    await operator.sync();
    expect(await row('team-c')).toEqual(before);
    // Fixed, and synced within the window (a shortened copy of the broken text).
    await writeFile(join(manifests, 'd.yaml'), whole);
    await operator.sync();
    expect(await row('team-c')).toEqual(before);
    await sleep(700);
    await operator.sync();
    expect(await row('team-c')).toEqual(before);
  });
});
