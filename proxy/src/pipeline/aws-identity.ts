import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Checksum, SourceData } from '@smithy/types';
import { ProxyError } from '@ccproxy/core';

/** A prepared Bedrock request, exactly as it will be sent: what SigV4 signs. */
export interface PreparedRequest {
  method: string;
  /** `host[:port]` the request goes to (the Host header undici sends). */
  host: string;
  /** Path and query as sent (already encoded once). */
  path: string;
  /** Every header that will be sent, lower-case names. */
  headers: Record<string, string>;
  /** The body bytes (or UTF-8 string) exactly as sent. */
  body: Uint8Array | string;
}

export type CredentialSource = () => Promise<AwsCredentialIdentity>;

/** Credentials are fetched again this long before they expire, so no request signs with expiring ones. */
const refreshMarginMs = 5 * 60_000;

/**
 * SHA-256 from node:crypto (native, ~1–2 GB/s) for the signer: the pure-JS hash of
 * `@aws-crypto/sha256-js` would cost milliseconds on a multi-MB Claude Code body.
 */
class NodeSha256 implements Checksum {
  readonly #secret: SourceData | undefined;
  #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = NodeSha256.#fresh(secret);
  }
  static #fresh(secret: SourceData | undefined): Hash | Hmac {
    if (secret === undefined) return createHash('sha256');
    return createHmac(
      'sha256',
      typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret),
    );
  }
  update(data: Uint8Array | string): void {
    this.#hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {
    this.#hash = NodeSha256.#fresh(this.#secret);
  }
}

/**
 * The AWS default credential chain, loaded on first use: a process whose keys all use API keys
 * never loads it (the module graph test keeps AWS SDKs off the data plane's heap).
 */
function defaultChain(): CredentialSource {
  let provider: CredentialSource | undefined;
  return async () => {
    provider ??= (await import('@aws-sdk/credential-provider-node')).defaultProvider();
    return provider();
  };
}

/**
 * The proxy's own AWS identity (the default credential chain: environment, web identity token
 * file — IRSA —, EKS Pod Identity / container credentials, shared profile, instance metadata),
 * signing Bedrock requests with SigV4. Credentials are cached and fetched again (once, however
 * many requests ask meanwhile) before they expire; signing keys are cached per day and region by
 * the signer, so a request costs one body hash and a few HMACs.
 */
export class AwsIdentity {
  readonly #source: CredentialSource;
  readonly #now: () => number;
  readonly #signers = new Map<string, SignatureV4>();
  #current: AwsCredentialIdentity | undefined;
  #refreshing: Promise<AwsCredentialIdentity> | undefined;

  constructor(options: { source?: CredentialSource; now?: () => number } = {}) {
    this.#source = options.source ?? defaultChain();
    this.#now = options.now ?? Date.now;
  }

  /** The headers that sign `request` for Bedrock (`authorization`, `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token`). */
  async sign(region: string, request: PreparedRequest): Promise<Record<string, string>> {
    const signer = this.#signerFor(region);
    // The body's hash, natively and straight from the string: the signer would first copy the
    // string into bytes (a third of the cost on a multi-MB body). Sent as x-amz-content-sha256,
    // which the signer then signs instead of hashing again.
    const payloadHash = createHash('sha256').update(request.body).digest('hex');
    const signed = await signer.sign({
      method: request.method,
      protocol: 'https:',
      hostname: request.host,
      path: request.path,
      query: {},
      headers: { ...request.headers, host: request.host, 'x-amz-content-sha256': payloadHash },
      body: request.body,
    });
    const headers: Record<string, string> = {
      authorization: signed.headers.authorization ?? '',
      'x-amz-date': signed.headers['x-amz-date'] ?? '',
      'x-amz-content-sha256': payloadHash,
    };
    const token = signed.headers['x-amz-security-token'];
    if (token !== undefined) headers['x-amz-security-token'] = token;
    return headers;
  }

  async credentials(): Promise<AwsCredentialIdentity> {
    const current = this.#current;
    const expiresAt = current?.expiration?.getTime();
    if (current !== undefined && (expiresAt === undefined || expiresAt - this.#now() > refreshMarginMs)) return current;
    const refresh = (this.#refreshing ??= this.#fetch());
    // Still valid: keep signing with them while the new ones arrive.
    if (current !== undefined && expiresAt !== undefined && expiresAt > this.#now()) {
      refresh.catch(() => undefined);
      return current;
    }
    return refresh;
  }

  async #fetch(): Promise<AwsCredentialIdentity> {
    try {
      const fresh = await this.#source();
      this.#current = fresh;
      return fresh;
    } catch (error) {
      // The chain's own message names where it looked, never a secret.
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error(`no AWS credentials for Bedrock: ${(error as Error).message}`),
      });
    } finally {
      this.#refreshing = undefined;
    }
  }

  #signerFor(region: string): SignatureV4 {
    let signer = this.#signers.get(region);
    if (signer === undefined) {
      signer = new SignatureV4({
        service: 'bedrock',
        region,
        credentials: () => this.credentials(),
        sha256: NodeSha256,
        uriEscapePath: true,
        // Bedrock does not need x-amz-content-sha256: the payload hash is in the signature.
        applyChecksum: false,
      });
      this.#signers.set(region, signer);
    }
    return signer;
  }
}
