import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import type { LocalOperator } from '@ccproxy/operator';
import { hashKey } from './kube-fixture.ts';
import { startLocalOperator, type LocalSetup } from './local-fixture.ts';

const secret = `apiVersion: v1\nkind: Secret\nmetadata: { name: laptop-key, namespace: team-a }\nstringData:\n  accessKey: ak_attack_cut_0123456789abcdefghijklmnopqrst\n`;
// Block style, as generators emit it: the last lines are whole fields.
const user = `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ann, namespace: team-a }\nspec: {}\n`;
const broughtKey = [
  'apiVersion: ccproxy.io/v1alpha1',
  'kind: AccessKey',
  'metadata:',
  '  name: laptop',
  '  namespace: team-a',
  'spec:',
  '  userRef:',
  '    name: ann',
  '  secretName: laptop-key',
  '',
].join('\n');

describe('a file cut in the middle of a line (valid YAML, nothing dropped; local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    setup = await startLocalOperator('local-cut-mid-line');
    ({ manifests, db, operator } = setup);
  });
  afterAll(async () => setup?.stop());
  const row = async (name: string) =>
    (
      await db.query<{ key_hash: string; status: string }>(
        'SELECT key_hash, status FROM access_keys WHERE namespace = $1 AND name = $2',
        ['team-a', name],
      )
    )[0];

  it('a cut inside secretName changes nothing while the file settles: the brought key stays', async () => {
    const whole = [user, secret, broughtKey].join('---\n');
    await writeFile(join(manifests, 'keys.yaml'), whole);
    await operator.sync();
    const before = await row('laptop');
    expect(before).toEqual({ key_hash: hashKey('ak_attack_cut_0123456789abcdefghijklmnopqrst'), status: 'active' });
    await writeFile(
      join(manifests, 'keys.yaml'),
      whole.slice(0, whole.indexOf('laptop-key\n', whole.indexOf('secretName')) + 4),
    );
    await operator.sync();
    expect(await row('laptop')).toEqual(before);
  });
});
