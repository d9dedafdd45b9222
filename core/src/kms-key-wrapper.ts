import type { KMSClient } from '@aws-sdk/client-kms';
import { KeyWrapperError, type KeyWrapper } from './envelope.ts';

/** AWS error names that mean "try again later", whatever their HTTP status. */
const outageNames = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'AbortError',
  'TimeoutError',
]);

/**
 * The cluster's key-encryption key: AWS KMS. Data keys are wrapped with `Encrypt` and unwrapped
 * with `Decrypt`, both bound to an encryption context, so a ciphertext lifted from the database
 * cannot be decrypted through KMS for any other purpose (and CloudTrail shows what each call was
 * for). The plaintext data key never leaves this process; KMS sees only 32 random bytes.
 *
 * Every call is bounded (`timeoutMs`, retries included: the SDK alone waits forever on a KMS
 * endpoint that accepts and never answers), and fails as a `KeyWrapperError` that says whether
 * it was an outage (retry) or a refusal (an administrator must act); `unavailable` holds the
 * last outage until a call succeeds again.
 */
export class KmsKeyWrapper implements KeyWrapper {
  readonly keyId: string;
  #client: KMSClient | undefined;
  readonly #context: Record<string, string>;
  readonly #timeoutMs: number;
  #unavailable: string | undefined;
  #lastCallAt = 0;
  #rechecking = false;

  /**
   * `client` defaults to one built from the environment (region, credentials, and
   * `AWS_ENDPOINT_URL_KMS`, which the SDK reads itself), on first use: the SDK is loaded only by
   * a process that wraps or unwraps a key, so it is not in every process's heap.
   */
  constructor(options: { keyId: string; client?: KMSClient; context?: Record<string, string>; timeoutMs?: number }) {
    this.keyId = options.keyId;
    this.#client = options.client;
    this.#context = options.context ?? { purpose: 'ccproxy-bedrock-api-key' };
    this.#timeoutMs = options.timeoutMs ?? 5_000;
  }

  get unavailable(): string | undefined {
    return this.#unavailable;
  }

  /**
   * Asks KMS again — an `Encrypt` of one byte, which the operator's role may call anyway — when
   * the last call found it unavailable and nothing has called it for `afterMs`. Without this, an
   * outage met by a reconcile that is never retried (its BedrockKey deleted or fixed meanwhile)
   * kept `unavailable`, and the operator not-ready, until some other key needed KMS.
   */
  async recheck(afterMs = 10_000): Promise<void> {
    if (this.#unavailable === undefined || this.#rechecking || Date.now() - this.#lastCallAt < afterMs) return;
    this.#rechecking = true;
    try {
      await this.wrap(Buffer.alloc(1)).catch(() => undefined);
    } finally {
      this.#rechecking = false;
    }
  }

  async wrap(dataKey: Buffer): Promise<Buffer> {
    const out = await this.#call('Encrypt', (kms, sdk, options) =>
      kms.send(
        new sdk.EncryptCommand({ KeyId: this.keyId, Plaintext: dataKey, EncryptionContext: this.#context }),
        options,
      ),
    );
    if (out.CiphertextBlob === undefined) throw new KeyWrapperError('KMS Encrypt returned no ciphertext', false);
    return Buffer.from(out.CiphertextBlob);
  }

  async unwrap(wrapped: Buffer, keyId: string): Promise<Buffer> {
    // KMS finds the key from the ciphertext itself; naming it makes a ciphertext of another key fail loudly.
    const out = await this.#call('Decrypt', (kms, sdk, options) =>
      kms.send(
        new sdk.DecryptCommand({ CiphertextBlob: wrapped, KeyId: keyId, EncryptionContext: this.#context }),
        options,
      ),
    );
    if (out.Plaintext === undefined) throw new KeyWrapperError('KMS Decrypt returned no plaintext', false);
    return Buffer.from(out.Plaintext);
  }

  async #call<Out>(
    operation: string,
    run: (
      kms: KMSClient,
      sdk: typeof import('@aws-sdk/client-kms'),
      options: { abortSignal: AbortSignal },
    ) => Promise<Out>,
  ): Promise<Out> {
    const sdk = await import('@aws-sdk/client-kms');
    this.#client ??= new sdk.KMSClient({});
    this.#lastCallAt = Date.now();
    try {
      const out = await run(this.#client, sdk, { abortSignal: AbortSignal.timeout(this.#timeoutMs) });
      this.#unavailable = undefined;
      return out;
    } catch (error) {
      const outage = isOutage(error);
      const message = `KMS ${operation} ${outage ? 'unavailable' : 'refused'}: ${describe(error, this.#timeoutMs)}`;
      if (outage) this.#unavailable = message;
      else this.#unavailable = undefined; // KMS answered: it is reachable, the refusal is the caller's to report
      throw new KeyWrapperError(message, outage, { cause: error });
    }
  }

  close(): void {
    this.#client?.destroy();
  }
}

/** An outage: no answer (network, timeout), a server fault (5xx) or throttling; a refusal otherwise. */
function isOutage(error: unknown): boolean {
  const e = error as { name?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  const name = typeof e?.name === 'string' ? e.name : '';
  const status = e?.$metadata?.httpStatusCode;
  if (outageNames.has(name) || e?.$fault === 'server') return true;
  return typeof status !== 'number' || status >= 500 || status === 429;
}

function describe(error: unknown, timeoutMs: number): string {
  const e = error as { name?: unknown; message?: unknown; code?: unknown } | null;
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  if (name === 'AbortError' || name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const code = typeof e?.code === 'string' ? ` (${e.code})` : '';
  return `${name}${code}: ${typeof e?.message === 'string' ? e.message : String(error)}`;
}
