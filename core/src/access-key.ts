import { createHmac, createSecretKey, randomBytes } from 'node:crypto';

/** `ak_` + 32 random bytes, base64url: 46 characters, 256 bits of entropy. */
export function generateAccessKey(): string {
  return `ak_${randomBytes(32).toString('base64url')}`;
}

/** The part of a key that may be shown and logged: enough to tell keys apart, useless to an attacker. */
export function keyPrefix(key: string): string {
  return key.slice(0, 10);
}

export type KeyHasher = (key: string) => string;

/**
 * HMAC-SHA256 with the server secret, hex. Only this hash reaches Postgres, so a database
 * leak does not leak usable keys, and without the secret the hashes cannot be brute-forced.
 */
export function createKeyHasher(secret: string): KeyHasher {
  if (secret.length < 32) throw new Error('the key hasher secret must be at least 32 characters');
  // One KeyObject for the process: the HMAC key is not re-imported on every request.
  const hmacKey = createSecretKey(Buffer.from(secret, 'utf8'));
  return (key) => createHmac('sha256', hmacKey).update(key).digest('hex');
}
