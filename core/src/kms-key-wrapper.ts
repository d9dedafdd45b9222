import type { KMSClient } from '@aws-sdk/client-kms';
import type { KeyWrapper } from './envelope.ts';

/**
 * The cluster's key-encryption key: AWS KMS. Data keys are wrapped with `Encrypt` and unwrapped
 * with `Decrypt`, both bound to an encryption context, so a ciphertext lifted from the database
 * cannot be decrypted through KMS for any other purpose (and CloudTrail shows what each call was
 * for). The plaintext data key never leaves this process; KMS sees only 32 random bytes.
 */
export class KmsKeyWrapper implements KeyWrapper {
  readonly keyId: string;
  #client: KMSClient | undefined;
  readonly #context: Record<string, string>;

  /**
   * `client` defaults to one built from the environment (region, credentials, and
   * `AWS_ENDPOINT_URL_KMS`, which the SDK reads itself), on first use: the SDK is loaded only by
   * a process that wraps or unwraps a key, so it is not in every process's heap.
   */
  constructor(options: { keyId: string; client?: KMSClient; context?: Record<string, string> }) {
    this.keyId = options.keyId;
    this.#client = options.client;
    this.#context = options.context ?? { purpose: 'ccproxy-bedrock-api-key' };
  }

  async wrap(dataKey: Buffer): Promise<Buffer> {
    const { kms, sdk } = await this.#kms();
    const out = await kms.send(
      new sdk.EncryptCommand({ KeyId: this.keyId, Plaintext: dataKey, EncryptionContext: this.#context }),
    );
    if (out.CiphertextBlob === undefined) throw new Error('KMS Encrypt returned no ciphertext');
    return Buffer.from(out.CiphertextBlob);
  }

  async unwrap(wrapped: Buffer, keyId: string): Promise<Buffer> {
    const { kms, sdk } = await this.#kms();
    // KMS finds the key from the ciphertext itself; naming it makes a ciphertext of another key fail loudly.
    const out = await kms.send(
      new sdk.DecryptCommand({ CiphertextBlob: wrapped, KeyId: keyId, EncryptionContext: this.#context }),
    );
    if (out.Plaintext === undefined) throw new Error('KMS Decrypt returned no plaintext');
    return Buffer.from(out.Plaintext);
  }

  async #kms() {
    const sdk = await import('@aws-sdk/client-kms');
    this.#client ??= new sdk.KMSClient({});
    return { kms: this.#client, sdk };
  }

  close(): void {
    this.#client?.destroy();
  }
}
