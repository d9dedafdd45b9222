import type { LRUCache } from 'lru-cache';
import { growingLru } from './growing-lru.ts';
import {
  decryptSecret,
  findBedrockAuth,
  keyChangesChannel,
  ProxyError,
  type Database,
  type KeyWrapper,
  type StoredBedrockAuth,
} from '@ccproxy/core';
import { AwsIdentity, type PreparedRequest } from './aws-identity.ts';

export type { PreparedRequest };

/** What a key signs with: its decrypted API key, or the proxy's AWS identity. */
type Auth = { apiKey: string } | 'AwsIdentity';

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
 */
export class BedrockCredentials {
  readonly #db: Database;
  readonly #wrapper: KeyWrapper;
  readonly #cache: LRUCache<string, Auth>;
  readonly #lastStored: LRUCache<string, StoredBedrockAuth>;
  readonly #aws: AwsIdentity;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: {
    db: Database;
    wrapper: KeyWrapper;
    ttlMs?: number;
    staleIfErrorMs?: number;
    /** The proxy's AWS identity (default: the AWS default credential chain). */
    aws?: AwsIdentity;
  }) {
    this.#db = options.db;
    this.#wrapper = options.wrapper;
    this.#cache = growingLru(10_000, options.ttlMs ?? 60_000);
    this.#lastStored = growingLru(10_000, Math.max(1, options.staleIfErrorMs ?? 15 * 60_000));
    this.#aws = options.aws ?? new AwsIdentity();
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#db.listen(keyChangesChannel, {
      onNotify: () => this.#cache.clear(),
      onRestored: () => this.#cache.clear(),
    });
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    this.#cache.clear();
    this.#lastStored.clear();
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

  async #authOf(accessKeyId: string): Promise<Auth> {
    const cached = this.#cache.get(accessKeyId);
    if (cached !== undefined) return cached;
    const stored = await this.#storedOf(accessKeyId);
    if (stored === undefined)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error(`no BedrockKey for access key ${accessKeyId}`),
      });
    const auth: Auth =
      stored.auth === 'AwsIdentity' ? 'AwsIdentity' : { apiKey: await decryptSecret(stored.ciphertext, this.#wrapper) };
    this.#cache.set(accessKeyId, auth);
    return auth;
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
