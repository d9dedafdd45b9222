import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptSecret, encryptSecret, LocalKeyWrapper, secretFingerprint } from '@ccproxy/core';

describe('envelope encryption', () => {
  const wrapper = new LocalKeyWrapper(randomBytes(32));

  it('round-trips, with a fresh data key and IV per secret, and never stores the plaintext', async () => {
    const a = await encryptSecret('bedrock-api-key-123', wrapper);
    const b = await encryptSecret('bedrock-api-key-123', wrapper);
    expect(a.equals(b)).toBe(false);
    expect(a.toString()).not.toContain('bedrock-api-key-123');
    expect(await decryptSecret(a, wrapper)).toBe('bedrock-api-key-123');
  });

  it('refuses another key and tampered ciphertext', async () => {
    const stored = await encryptSecret('secret', wrapper);
    await expect(decryptSecret(stored, new LocalKeyWrapper(randomBytes(32)))).rejects.toThrow(/local key/);
    const envelope = JSON.parse(stored.toString());
    envelope.ct = Buffer.from('tampered!').toString('base64');
    await expect(decryptSecret(Buffer.from(JSON.stringify(envelope)), wrapper)).rejects.toThrow();
  });

  it('fingerprints without revealing', () => {
    expect(secretFingerprint('abc')).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(secretFingerprint('abc')).toBe(secretFingerprint('abc'));
  });
});
