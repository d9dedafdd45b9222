import type { LRUCache } from 'lru-cache';
import { Counter, type Registry } from 'prom-client';
import { growingLru } from './growing-lru.ts';
import {
  decryptSecret,
  findBedrockAuth,
  keyChangesChannel,
  KeyWrapperError,
  ProxyError,
  type Database,
  type KeyWrapper,
  type StoredBedrockAuth,
} from '@ccproxy/core';
import { AwsIdentity, type PreparedRequest } from './aws-identity.ts';

export type { PreparedRequest };

/** What a key signs with: its decrypted API key, or the proxy's AWS identity. */
type Auth = { apiKey: string } | 'AwsIdentity';

/** A decrypted API key and the envelope it came from (a held copy serves only that envelope). */
interface Held {
  ciphertext: Buffer;
  apiKey: string;
}

const decryptFailuresName = 'ccproxy_bedrock_key_decrypt_failures_total';

/**
 * How each access key authenticates to Bedrock (`BedrockKey.spec.auth`): a Bedrock API key
 * (`Authorization: Bearer`) or the proxy's own AWS identity (SigV4, `aws-identity.ts`).
 *
 * Decrypted Bedrock API keys by access key, held briefly (the TTL bounds how long a plaintext
 * key lives in memory) and dropped on every key change notification.
 *
 * Stale-if-error, like key lookups: the envelope-encrypted key last read from Postgres is kept
 * (ciphertext only) for `staleIfErrorMs`, and used when Postgres cannot answer, so a key that
 * fails over to Bedrock keeps working through a database outage; it is decrypted again on use.
 *
 * KMS outages (the wrapper's `KeyWrapperError` with `unavailable`): the key last decrypted from
 * the very envelope Postgres holds now is served from memory for `staleIfErrorMs` after that
 * decryption (a changed or deleted BedrockKey has another envelope, or none, so it never falls
 * back), and KMS is asked again once per `ttlMs`; a key this replica never decrypted gets
 * `PRX_BEDROCK_KEY_UNAVAILABLE` (503), and KMS refusing (a disabled key, no permission)
 * `PRX_BEDROCK_MISCONFIGURED`. Each failure is counted (`ccproxy_bedrock_key_decrypt_failures_total`).
 */
export class BedrockCredentials {
  readonly #db: Database;
  readonly #wrapper: KeyWrapper;
  readonly #cache: LRUCache<string, Auth>;
  readonly #lastStored: LRUCache<string, StoredBedrockAuth>;
  readonly #held: LRUCache<string, Held>;
  readonly #failures: Counter<'cause' | 'answer'>;
  readonly #aws: AwsIdentity;
  /** Loads in flight by access key: concurrent misses share one Postgres read and one KMS call. */
  readonly #loading = new Map<string, Promise<Auth>>();
  /** Moves on every invalidation: a load that began before one is not cached, or shared after it. */
  #generation = 0;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: {
    db: Database;
    wrapper: KeyWrapper;
    ttlMs?: number;
    staleIfErrorMs?: number;
    /** The proxy's AWS identity (default: the AWS default credential chain). */
    aws?: AwsIdentity;
    /** Where the decrypt-failure counter is registered (none: counted, not exported). */
    registry?: Registry;
  }) {
    this.#db = options.db;
    this.#wrapper = options.wrapper;
    this.#cache = growingLru(10_000, options.ttlMs ?? 60_000);
    this.#lastStored = growingLru(10_000, Math.max(1, options.staleIfErrorMs ?? 15 * 60_000));
    this.#held = growingLru(10_000, Math.max(1, options.staleIfErrorMs ?? 15 * 60_000));
    const { registry } = options;
    this.#failures =
      (registry?.getSingleMetric(decryptFailuresName) as Counter<'cause' | 'answer'> | undefined) ??
      new Counter({
        name: decryptFailuresName,
        help: 'Bedrock API keys KMS could not decrypt, by cause (kms_unavailable, kms_refused) and answer (held_key: served from memory, error).',
        labelNames: ['cause', 'answer'] as const,
        registers: registry === undefined ? [] : [registry],
      });
    this.#aws = options.aws ?? new AwsIdentity();
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#db.listen(keyChangesChannel, {
      onNotify: () => this.#invalidate(),
      onRestored: () => this.#invalidate(),
    });
  }

  #invalidate(): void {
    this.#generation += 1;
    this.#cache.clear();
    this.#loading.clear();
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    this.#invalidate();
    this.#lastStored.clear();
    this.#held.clear();
  }

  /**
   * The one place the forward path gets Bedrock auth: the headers to add to `request` (prepared
   * exactly as it will be sent, body bytes included) for the access key's BedrockKey — a Bearer
   * API key, or a SigV4 signature by the proxy's AWS identity for `region`. Works for any
   * Bedrock Runtime operation.
   */
  async authHeaders(
    accessKeyId: string,
    region: string | null,
    request: PreparedRequest,
  ): Promise<Record<string, string>> {
    const auth = await this.#authOf(accessKeyId);
    if (auth !== 'AwsIdentity') return { authorization: `Bearer ${auth.apiKey}` };
    if (region === null)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error("an AwsIdentity BedrockKey needs the access key's bedrock.region to sign for"),
      });
    return this.#aws.sign(region, request);
  }

  /**
   * The cached auth, or one load shared by every request that misses at once: when a breaker opens,
   * a burst of requests fails over together, and each used to read Postgres and call KMS Decrypt
   * (100 at once: 100 Decrypts, enough to be throttled by KMS; now 1).
   */
  #authOf(accessKeyId: string): Promise<Auth> | Auth {
    const cached = this.#cache.get(accessKeyId);
    if (cached !== undefined) return cached;
    const loading = this.#loading.get(accessKeyId);
    if (loading !== undefined) return loading;
    const generation = this.#generation;
    const load = this.#load(accessKeyId).then((auth) => {
      if (generation === this.#generation) this.#cache.set(accessKeyId, auth);
      return auth;
    });
    this.#loading.set(accessKeyId, load);
    const forget = () => {
      if (this.#loading.get(accessKeyId) === load) this.#loading.delete(accessKeyId);
    };
    load.then(forget, forget);
    return load;
  }

  async #load(accessKeyId: string): Promise<Auth> {
    const stored = await this.#storedOf(accessKeyId);
    if (stored === undefined)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error(`no BedrockKey for access key ${accessKeyId}`),
      });
    if (stored.auth === 'AwsIdentity') {
      this.#held.delete(accessKeyId);
      return 'AwsIdentity';
    }
    return { apiKey: await this.#decrypt(accessKeyId, stored.ciphertext) };
  }

  /** KMS's answer, or through its outage the key held from this very envelope (see the class comment). */
  async #decrypt(accessKeyId: string, ciphertext: Buffer): Promise<string> {
    try {
      const apiKey = await decryptSecret(ciphertext, this.#wrapper);
      this.#held.set(accessKeyId, { ciphertext, apiKey });
      return apiKey;
    } catch (error) {
      const outage = error instanceof KeyWrapperError && error.unavailable;
      const held = this.#held.get(accessKeyId);
      if (outage && held !== undefined && held.ciphertext.equals(ciphertext)) {
        this.#failures.inc({ cause: 'kms_unavailable', answer: 'held_key' });
        return held.apiKey;
      }
      this.#failures.inc({ cause: outage ? 'kms_unavailable' : 'kms_refused', answer: 'error' });
      throw new ProxyError(outage ? 'PRX_BEDROCK_KEY_UNAVAILABLE' : 'PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: error,
      });
    }
  }

  async #storedOf(accessKeyId: string): Promise<StoredBedrockAuth | undefined> {
    let stored: StoredBedrockAuth | undefined;
    try {
      stored = await findBedrockAuth(this.#db, accessKeyId);
    } catch (error) {
      const last = this.#lastStored.get(accessKeyId);
      if (last === undefined) throw error;
      return last;
    }
    if (stored === undefined) this.#lastStored.delete(accessKeyId);
    else this.#lastStored.set(accessKeyId, stored);
    return stored;
  }
}
