import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Envelope encryption for secrets at rest (Bedrock API keys): each secret is encrypted with a
 * fresh 256-bit data key (AES-256-GCM), and only the data key, wrapped by a key-encryption key,
 * is stored beside it. The key-encryption key is AWS KMS in a cluster, or a local key file in
 * local mode; both implement `KeyWrapper`.
 */
export interface KeyWrapper {
  /** Identifies the key-encryption key (a KMS key id/ARN, or `local:<fingerprint>`). */
  readonly keyId: string;
  wrap(dataKey: Buffer): Promise<Buffer>;
  unwrap(wrapped: Buffer, keyId: string): Promise<Buffer>;
  /**
   * Why the key-encryption key cannot be used right now (the last call failed as an outage:
   * unreachable, timed out, throttled, failing), or undefined while it works. Readiness reads it.
   */
  readonly unavailable?: string | undefined;
}

/**
 * The key-encryption key could not be used. `unavailable`: an outage (KMS unreachable, timing
 * out, throttling or failing) that heals by itself, so callers retry (or use what they already
 * hold); otherwise KMS refused (a disabled or deleted key, no permission, a ciphertext of another
 * key): an administrator must act.
 */
export class KeyWrapperError extends Error {
  readonly unavailable: boolean;
  constructor(message: string, unavailable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyWrapperError';
    this.unavailable = unavailable;
  }
}

interface Envelope {
  v: 1;
  kid: string;
  wk: string;
  iv: string;
  tag: string;
  ct: string;
}

export async function encryptSecret(plaintext: string, wrapper: KeyWrapper): Promise<Buffer> {
  const dataKey = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const envelope: Envelope = {
    v: 1,
    kid: wrapper.keyId,
    wk: (await wrapper.wrap(dataKey)).toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ct: ct.toString('base64'),
  };
  dataKey.fill(0);
  return Buffer.from(JSON.stringify(envelope));
}

export async function decryptSecret(stored: Buffer, wrapper: KeyWrapper): Promise<string> {
  const envelope = JSON.parse(stored.toString('utf8')) as Envelope;
  if (envelope.v !== 1) throw new Error(`unknown envelope version ${String(envelope.v)}`);
  const dataKey = await wrapper.unwrap(Buffer.from(envelope.wk, 'base64'), envelope.kid);
  const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(envelope.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
  const plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ct, 'base64')), decipher.final()]).toString(
    'utf8',
  );
  dataKey.fill(0);
  return plaintext;
}

/** The key-encryption key an envelope was sealed with. */
export function envelopeKeyId(stored: Buffer): string | undefined {
  try {
    return (JSON.parse(stored.toString('utf8')) as Partial<Envelope>).kid;
  } catch {
    return undefined;
  }
}

/** A short, non-reversible fingerprint to show which secret is stored (status, logs). */
export function secretFingerprint(plaintext: string): string {
  return `sha256:${createHash('sha256').update(plaintext).digest('hex').slice(0, 16)}`;
}

/** Local mode's key-encryption key: 32 random bytes from the data dir, AES-256-GCM key wrap. */
export class LocalKeyWrapper implements KeyWrapper {
  readonly keyId: string;
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the local envelope key must be 32 bytes');
    this.#key = key;
    this.keyId = `local:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
  }

  async wrap(dataKey: Buffer): Promise<Buffer> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), wrapped]);
  }

  async unwrap(wrapped: Buffer, keyId: string): Promise<Buffer> {
    if (keyId !== this.keyId) throw new Error(`secret was encrypted with ${keyId}, not the local key ${this.keyId}`);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, wrapped.subarray(0, 12));
    decipher.setAuthTag(wrapped.subarray(12, 28));
    return Buffer.concat([decipher.update(wrapped.subarray(28)), decipher.final()]);
  }
}
