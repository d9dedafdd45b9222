import { describe, expect, it } from 'vitest';
import { createKeyHasher, generateAccessKey, keyPrefix } from '@ccproxy/core';

describe('access keys', () => {
  it('are ak_ + 32 random bytes in base64url', () => {
    const key = generateAccessKey();
    expect(key).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(key.slice(3), 'base64url')).toHaveLength(32);
    expect(generateAccessKey()).not.toBe(key);
  });

  it('hash with HMAC-SHA256 of the server secret: stable per secret, different across secrets', () => {
    const a = createKeyHasher('a'.repeat(32));
    const b = createKeyHasher('b'.repeat(32));
    const key = generateAccessKey();
    expect(a(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(a(key)).toBe(a(key));
    expect(b(key)).not.toBe(a(key));
    expect(a(key)).not.toContain(key.slice(3, 13));
  });

  it('refuse a weak server secret', () => {
    expect(() => createKeyHasher('too-short')).toThrow(/at least 32/);
  });

  it('show only a prefix', () => {
    expect(keyPrefix('ak_abcdefghijklmnop')).toBe('ak_abcdefg');
  });
});
