import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import type { LocalOperator } from '@ccproxy/operator';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const user = (name: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name}, namespace: team-a }\nspec: {}\n`;
const accessKey = (name: string, userName: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: team-a }\nspec: { userRef: { name: ${userName} }, secretName: ${name}-key, routing: PlanOnly }\n`;
const secret = (name: string, key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: team-a }\nstringData: { accessKey: ${key} }\n`;

const broughtKey = 'ak_brought_settle_key_0123456789abcdefghij';
const docs = [
  user('ann'),
  accessKey('generated', 'ann'),
  accessKey('brought', 'ann'),
  secret('brought-key', broughtKey),
];
const whole = docs.join('---\n');
/** What a generator writing `> team.yaml` in steps leaves between two writes: valid YAML, cut at a document boundary. */
const cut = docs.slice(0, 2).join('---\n');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A manifest still being written must not revoke what its later documents hold: a file that
 * changed less than the settle window ago (500 ms, the default) and lacks resources it held keeps
 * its previous contents until it has settled. Real files, real Postgres, the operator's own
 * watcher running.
 */
describe('a manifest still being written (local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  const file = () => join(manifests, 'team.yaml');

  beforeAll(async () => {
    setup = await startLocalOperator('local-settle');
    ({ manifests, db, operator } = setup);
  });
  afterAll(async () => setup?.stop());

  const row = async (name: string) =>
    (
      await db.query<{ key_hash: string; status: string; uid: string }>(
        "SELECT key_hash, status, uid FROM access_keys WHERE namespace = 'team-a' AND name = $1",
        [name],
      )
    )[0];
  const ready = (report: Awaited<ReturnType<LocalOperator['sync']>>, name: string) =>
    report.statuses.get(`AccessKey/team-a/${name}`)?.conditions.find((c) => c.type === 'Ready')?.status;

  it('a cut at a document boundary revokes nothing and changes no key; the finished file changes nothing either', async () => {
    await writeFile(file(), whole);
    const first = await operator.sync();
    expect([ready(first, 'generated'), ready(first, 'brought')]).toEqual(['True', 'True']);
    const before = { generated: await row('generated'), brought: await row('brought') };
    expect(before.brought?.status).toBe('active');

    await writeFile(file(), cut);
    const during = await operator.sync();
    expect(ready(during, 'brought')).toBe('True');
    expect(await row('brought')).toEqual(before.brought);
    expect(await row('generated')).toEqual(before.generated);

    await writeFile(file(), whole);
    await sleep(700);
    const after = await operator.sync();
    expect([ready(after, 'generated'), ready(after, 'brought')]).toEqual(['True', 'True']);
    expect(await row('brought')).toEqual(before.brought);
    expect(await row('generated')).toEqual(before.generated);
  });

  it('a resource taken out of a file on purpose goes once the file has been unchanged for the window', async () => {
    await writeFile(file(), cut);
    const written = Date.now();
    await operator.sync();
    await sleep(Math.max(0, written + 400 - Date.now()));
    expect(await row('brought'), 'still there 0.4 s after the write').toBeDefined();
    // The operator's own follow-up sync (no call here) removes it after the window.
    await expect.poll(() => row('brought'), { timeout: 5_000, interval: 20 }).toBeUndefined();
    expect(Date.now() - written).toBeGreaterThanOrEqual(500);
    expect((await row('generated'))?.status).toBe('active');
  });

  it('a deleted file removes what it held at the next sync: nothing to wait for', async () => {
    await writeFile(file(), whole);
    await sleep(600);
    await operator.sync();
    expect((await row('brought'))?.status).toBe('active');
    await unlink(file());
    await operator.sync();
    expect(await row('brought')).toBeUndefined();
    expect(await row('generated')).toBeUndefined();
  });
});
