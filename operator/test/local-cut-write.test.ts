import { utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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

describe('a file whose write was cut short: valid YAML, nothing dropped (local mode)', () => {
  let setup: LocalSetup;
  let manifests: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    setup = await startLocalOperator('local-cut-write');
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
    const during = await operator.sync();
    expect(during.problems.join('\n')).toMatch(/keys\.yaml: changed \d+ ms ago and does not end with a line break/);
    expect(await row('laptop')).toEqual(before);
  });

  it('a rewrite cut at the end of a line (before "revoked: true") keeps the key revoked, then the whole file applies', async () => {
    const revoked = broughtKey.replace('  secretName: laptop-key\n', '  secretName: laptop-key\n  revoked: true\n');
    const whole = [user, secret, revoked].join('---\n');
    await writeFile(join(manifests, 'keys.yaml'), whole);
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('revoked');
    // The generator runs again and has written all but the last line.
    await writeFile(join(manifests, 'keys.yaml'), whole.slice(0, whole.indexOf('  revoked: true')));
    const during = await operator.sync();
    expect(during.problems.join('\n')).toMatch(
      /keys\.yaml: changed \d+ ms ago and is a shortened copy of what it held/,
    );
    expect((await row('laptop'))?.status).toBe('revoked');
    // Taking the line out on purpose takes effect once the file has settled.
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('active');
  });

  it('a regenerated file (a new header) cut at a line end before "revoked: true" keeps the key revoked until it has settled; the whole file then applies', async () => {
    const revoked = broughtKey.replace('  secretName: laptop-key\n', '  secretName: laptop-key\n  revoked: true\n');
    const generated = (at: string) => `# generated ${at}\n${[user, secret, revoked].join('---\n')}`;
    await writeFile(join(manifests, 'keys.yaml'), generated('12:00'));
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('revoked');
    // Run again: a new header, and the write stopped after "secretName: laptop-key\n". Not a
    // shortened copy of the old text (the header changed), nothing dropped, a final line break.
    const next = generated('12:05');
    const cut = next.slice(0, next.indexOf('  revoked: true'));
    await writeFile(join(manifests, 'keys.yaml'), cut);
    const during = await operator.sync();
    expect(during.problems.join('\n')).not.toMatch(/keys\.yaml/);
    expect((await row('laptop'))?.status).toBe('revoked');
    await sleep(100);
    expect((await operator.sync(), await row('laptop'))?.status).toBe('revoked');
    // The write completes: still revoked, and so it stays once settled.
    await writeFile(join(manifests, 'keys.yaml'), next);
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('revoked');
  });

  it('a change waits the window (its previous contents stand), a revocation or suspension does not, and a text the admin announced is used at once', async () => {
    const revoked = broughtKey.replace('  secretName: laptop-key\n', '  secretName: laptop-key\n  revoked: true\n');
    const active = [user, secret, broughtKey].join('---\n');
    await writeFile(join(manifests, 'keys.yaml'), active);
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('active');
    // A revocation by hand applies at once: a cut write can lack the line, never add it.
    await writeFile(join(manifests, 'keys.yaml'), [user, secret, revoked].join('---\n'));
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('revoked');
    // Taking it back is a change like any other: applied once the file has not changed for the window.
    await sleep(600);
    await operator.sync();
    await writeFile(join(manifests, 'keys.yaml'), active);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('revoked');
    await sleep(600);
    await operator.sync();
    expect((await row('laptop'))?.status).toBe('active');
    // A suspension of the user applies at once too (the key is refused with it).
    const suspended = user.replace('spec: {}', 'spec: { suspended: true }');
    await writeFile(join(manifests, 'keys.yaml'), [suspended, secret, broughtKey].join('---\n'));
    await operator.sync();
    expect(await db.query("SELECT suspended FROM users WHERE namespace = 'team-a' AND name = 'ann'")).toEqual([
      { suspended: true },
    ]);
    // The admin replaces a file by a rename and says so: even an un-suspension is used at once.
    await sleep(600);
    await operator.sync();
    operator.expectWrite(join(manifests, 'keys.yaml'), active);
    await writeFile(join(manifests, 'keys.yaml'), active);
    await operator.sync();
    expect(await db.query("SELECT suspended FROM users WHERE namespace = 'team-a' AND name = 'ann'")).toEqual([
      { suspended: false },
    ]);
    // An announced text someone else overwrote at once is an ordinary change: it waits.
    await sleep(600);
    await operator.sync();
    operator.expectWrite(join(manifests, 'keys.yaml'), [suspended, secret, broughtKey].join('---\n'));
    await writeFile(join(manifests, 'keys.yaml'), active.replace('spec: {}', 'spec: { displayName: Ann }'));
    await operator.sync();
    expect(await db.query("SELECT display_name FROM users WHERE namespace = 'team-a' AND name = 'ann'")).toEqual([
      { display_name: '' },
    ]);
  });

  it('a modification time in the future counts as now: a removal waits the window, not the skew, and the loop stays calm', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const whole = [user, secret, broughtKey].join('---\n');
      await writeFile(join(manifests, 'keys.yaml'), whole);
      await sleep(600);
      await operator.sync();
      expect((await row('laptop'))?.status).toBe('active');
      // The key taken out, the file copied from a host whose clock runs 30 days ahead.
      await writeFile(join(manifests, 'keys.yaml'), [user, secret].join('---\n'));
      const ahead = new Date(Date.now() + 30 * 86_400_000);
      await utimes(join(manifests, 'keys.yaml'), ahead, ahead);
      const during = await operator.sync();
      expect(during.problems.join('\n')).toMatch(
        /keys\.yaml: changed 0 ms ago and is a shortened copy of what it held/,
      );
      expect((await row('laptop'))?.status).toBe('active');
      await sleep(700);
      await operator.sync();
      expect(await row('laptop')).toBeUndefined();
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
