import type { LRUCache } from 'lru-cache';
import { growingLru } from './growing-lru.ts';
import {
  decryptSecret,
  findBedrockCiphertext,
  keyChangesChannel,
  ProxyError,
  type Database,
  type KeyWrapper,
} from '@ccproxy/core';

/**
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
  readonly #cache: LRUCache<string, string>;
  readonly #lastCiphertext: LRUCache<string, Buffer>;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: { db: Database; wrapper: KeyWrapper; ttlMs?: number; staleIfErrorMs?: number }) {
    this.#db = options.db;
    this.#wrapper = options.wrapper;
    this.#cache = growingLru(10_000, options.ttlMs ?? 60_000);
    this.#lastCiphertext = growingLru(10_000, Math.max(1, options.staleIfErrorMs ?? 15 * 60_000));
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
    this.#lastCiphertext.clear();
  }

  async apiKeyFor(accessKeyId: string): Promise<string> {
    const cached = this.#cache.get(accessKeyId);
    if (cached !== undefined) return cached;
    const ciphertext = await this.#ciphertextOf(accessKeyId);
    if (ciphertext === undefined)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error(`no BedrockKey for access key ${accessKeyId}`),
      });
    const apiKey = await decryptSecret(ciphertext, this.#wrapper);
    this.#cache.set(accessKeyId, apiKey);
    return apiKey;
  }

  async #ciphertextOf(accessKeyId: string): Promise<Buffer | undefined> {
    let ciphertext: Buffer | undefined;
    try {
      ciphertext = await findBedrockCiphertext(this.#db, accessKeyId);
    } catch (error) {
      const last = this.#lastCiphertext.get(accessKeyId);
      if (last === undefined) throw error;
      return last;
    }
    if (ciphertext === undefined) this.#lastCiphertext.delete(accessKeyId);
    else this.#lastCiphertext.set(accessKeyId, ciphertext);
    return ciphertext;
  }
}
