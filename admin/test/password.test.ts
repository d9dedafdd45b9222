import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeHash, hashPassword, isPasswordHash, needsUpgrade, verifyPassword } from '@ccproxy/admin';

/** The break-glass password's hash: argon2id at or above OWASP's minimum; old scrypt hashes still verify. */
describe('break-glass password hashing', () => {
  it('hashes with argon2id at or above OWASP guidance (m ≥ 19 MiB, t ≥ 2, p = 1), in the PHC string form', async () => {
    const hash = await hashPassword('correct horse');
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/.exec(hash);
    expect(match, hash).not.toBeNull();
    const [memory, passes, parallelism] = [match?.[1], match?.[2], match?.[3]].map(Number) as [number, number, number];
    expect(memory).toBeGreaterThanOrEqual(19_456);
    expect(passes).toBeGreaterThanOrEqual(2);
    expect(parallelism).toBe(1);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsf', hash)).toBe(false);
    expect(needsUpgrade(hash)).toBe(false);
    // A fresh salt each time.
    expect(await hashPassword('correct horse')).not.toBe(hash);
  });

  it('answers every one of a burst of logins correctly (the hashes queue, two at a time)', async () => {
    const hash = await hashPassword('burst');
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => verifyPassword(i % 2 === 0 ? 'burst' : `wrong-${i}`, hash)),
    );
    expect(answers).toEqual([true, false, true, false, true, false, true, false]);
  });

  it('still verifies a scrypt hash written by earlier versions, and reports it as needing an upgrade', async () => {
    const salt = randomBytes(16);
    const key = scryptSync('old password', salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    const legacy = ['scrypt', 2 ** 15, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    expect(isPasswordHash(legacy)).toBe(true);
    expect(await verifyPassword('old password', legacy)).toBe(true);
    expect(await verifyPassword('other password', legacy)).toBe(false);
    expect(needsUpgrade(legacy)).toBe(true);
    expect(describeHash(legacy)).toBe('scrypt N=32768 r=8 p=1 (below OWASP: N=2^17)');
  });

  it('reports a cheaper argon2id hash as needing an upgrade; refuses malformed and runaway-cost hashes', async () => {
    const hash = await hashPassword('pw');
    const weak = hash.replace(/m=\d+,t=\d+/, 'm=8192,t=1');
    expect(isPasswordHash(weak)).toBe(true);
    expect(needsUpgrade(weak)).toBe(true);
    for (const bad of [
      '',
      'plain text',
      hash.replace('argon2id', 'argon2i'),
      hash.replace(/m=\d+/, 'm=99999999'),
      hash.replace(/t=\d+/, 't=999'),
      hash.slice(0, -30),
      'scrypt$1048577$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5',
    ]) {
      expect.soft(isPasswordHash(bad), bad).toBe(false);
      expect.soft(await verifyPassword('pw', bad), bad).toBe(false);
    }
  });
});
