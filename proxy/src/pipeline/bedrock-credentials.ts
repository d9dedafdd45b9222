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
 */
export class BedrockCredentials {
  readonly #db: Database;
  readonly #wrapper: KeyWrapper;
  readonly #cache: LRUCache<string, string>;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: { db: Database; wrapper: KeyWrapper; ttlMs?: number }) {
    this.#db = options.db;
    this.#wrapper = options.wrapper;
    this.#cache = growingLru(10_000, options.ttlMs ?? 60_000);
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
  }

  async apiKeyFor(accessKeyId: string): Promise<string> {
    const cached = this.#cache.get(accessKeyId);
    if (cached !== undefined) return cached;
    const ciphertext = await findBedrockCiphertext(this.#db, accessKeyId);
    if (ciphertext === undefined)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error(`no BedrockKey for access key ${accessKeyId}`),
      });
    const apiKey = await decryptSecret(ciphertext, this.#wrapper);
    this.#cache.set(accessKeyId, apiKey);
    return apiKey;
  }
}
