import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix, type Database } from '@ccproxy/core';
import type { LocalOperator } from '@ccproxy/operator';
import { hashKey } from './kube-fixture.ts';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const user = `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ann, namespace: team-a }\nspec: {}\n`;
const accessKey = (name: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: team-a }\nspec: { userRef: { name: ann }, secretName: ${name}-key, routing: PlanOnly }\n`;
const secret = (name: string, key: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}-key, namespace: team-a }\nstringData: { accessKey: ${JSON.stringify(key)} }\n`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rule =
  'holds an accessKey with characters other than A-Z, a-z, 0-9 and . _ ~ - (the only ones an access key may hold)';

describe('a bring-your-own key outside the URL-safe alphabet (local mode, the policy the operator shares)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    setup = await startLocalOperator('local-key-alphabet');
    ({ manifests, db, operator } = setup);
    await writeFile(join(manifests, 'user.yaml'), user);
  });
  afterAll(async () => setup?.stop());
  const row = async (name: string) =>
    (
      await db.query<{ key_hash: string; status: string }>(
        "SELECT key_hash, status FROM access_keys WHERE namespace = 'team-a' AND name = $1",
        [name],
      )
    )[0];
  const stalledMessage = (
    statuses: Map<string, { conditions: Array<{ type: string; message: string }> }>,
    id: string,
  ) => statuses.get(id)?.conditions.find((c) => c.type === 'Stalled' && c.message !== '')?.message;

  it.each([';', ',', '=', '&', '#', '?', '%', '/', ' '])(
    'a new key holding %j is refused: Stalled InvalidKey naming the rule, no row, no key in the status',
    async (char) => {
      const name = `k${char.charCodeAt(0)}`;
      const key = ['k9', 'Qw7', 'Er5', 'Ty3', 'Ui1', 'Op0', 'As8', 'Df6', 'Gh2'].join(char);
      await writeFile(join(manifests, `${name}.yaml`), [accessKey(name), secret(name, key)].join('---\n'));
      const report = await operator.sync();
      const status = report.statuses.get(`AccessKey/team-a/${name}`);
      expect(status?.conditions.find((c) => c.type === 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'InvalidKey',
      });
      expect(stalledMessage(report.statuses, `AccessKey/team-a/${name}`)).toBe(`Secret ${name}-key ${rule}.`);
      expect(JSON.stringify(status)).not.toContain(key.slice(0, 8));
      expect(await row(name)).toBeUndefined();
    },
  );

  it('a key adopted before the rule keeps its active row until the Secret holds a valid key, which then replaces it', async () => {
    const name = 'legacy';
    const valid = 'ak_legacy_0123456789abcdefghijklmnop';
    const legacy = 'k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6';
    await writeFile(join(manifests, `${name}.yaml`), [accessKey(name), secret(name, valid)].join('---\n'));
    await operator.sync();
    expect(await row(name)).toEqual({ key_hash: hashKey(valid), status: 'active' });
    // The Secret holds the legacy key, and the row the hash an earlier version wrote when it
    // adopted it (the row is set after the file is read, so no sync of the valid key overwrites it).
    await writeFile(join(manifests, `${name}.yaml`), [accessKey(name), secret(name, legacy)].join('---\n'));
    await sleep(700);
    await operator.sync();
    await db.query("UPDATE access_keys SET key_hash = $1, key_prefix = $2 WHERE namespace = 'team-a' AND name = $3", [
      hashKey(legacy),
      keyPrefix(legacy),
      name,
    ]);
    const upgraded = await operator.sync();
    expect(stalledMessage(upgraded.statuses, `AccessKey/team-a/${name}`)).toBe(`Secret ${name}-key ${rule}.`);
    expect(await row(name)).toEqual({ key_hash: hashKey(legacy), status: 'active' });

    const rotated = 'ak_rotated_0123456789abcdefghijklmn';
    await writeFile(join(manifests, `${name}.yaml`), [accessKey(name), secret(name, rotated)].join('---\n'));
    await sleep(700);
    await operator.sync();
    expect(await row(name)).toEqual({ key_hash: hashKey(rotated), status: 'active' });
  });
});
