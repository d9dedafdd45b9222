import type { Limits } from '../governance/limits.ts';
import type { Queryable } from './database.ts';

export type Routing = 'PlanWithFailover' | 'PlanOnly' | 'BedrockOnly';
export type BedrockApi = 'Converse' | 'InvokeModel';

/** What the proxy knows about an authenticated access key. */
export interface KeyRecord {
  readonly accessKeyId: string;
  readonly userId: string;
  readonly namespace: string;
  readonly name: string;
  readonly userName: string;
  readonly keyPrefix: string;
  readonly routing: Routing;
  readonly bedrock: {
    readonly region: string | null;
    /** Resolved: the AccessKey's `spec.bedrock.api`, else its newest BedrockKey's `spec.api`, else InvokeModel. */
    readonly api: BedrockApi;
    readonly model: string | null;
    readonly modelMap: Readonly<Record<string, string>>;
  };
  /** Set when the key is a rotated-out one: ms since epoch when its grace period ends. */
  readonly validUntil?: number;
  /** The key's and its user's budgets and rate limits (`{}` when none): read with the key, no extra query. */
  readonly limits?: { readonly key: Limits; readonly user: Limits };
}

interface KeyRow {
  access_key_id: string;
  user_id: string;
  namespace: string;
  name: string;
  user_name: string;
  key_prefix: string;
  routing: Routing;
  bedrock_region: string | null;
  bedrock_api: BedrockApi;
  bedrock_model: string | null;
  bedrock_model_map: Record<string, string>;
  valid_until: Date | null;
  key_limits: Limits | null;
  user_limits: Limits | null;
}

/**
 * The key that authenticates with `keyHash`, if any: active, its user not suspended, and either
 * the current key or a rotated-out one still inside its grace period.
 */
export async function findKeyByHash(db: Queryable, keyHash: string): Promise<KeyRecord | undefined> {
  const rows = await db.query<KeyRow>(
    `SELECT k.id::text AS access_key_id, u.id::text AS user_id, k.namespace, k.name, u.name AS user_name,
            k.key_prefix, k.routing, k.bedrock_region, k.bedrock_model, k.bedrock_model_map,
            COALESCE(k.bedrock_api,
                     (SELECT b.api FROM bedrock_keys b WHERE b.access_key_id = k.id ORDER BY b.updated_at DESC LIMIT 1),
                     'InvokeModel') AS bedrock_api,
            CASE WHEN k.key_hash = $1 THEN NULL ELSE k.previous_key_expires_at END AS valid_until,
            k.limits AS key_limits, u.limits AS user_limits
       FROM access_keys k JOIN users u ON u.id = k.user_id
      WHERE (k.key_hash = $1 OR (k.previous_key_hash = $1 AND k.previous_key_expires_at > now()))
        AND k.status = 'active' AND NOT u.suspended`,
    [keyHash],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    accessKeyId: row.access_key_id,
    userId: row.user_id,
    namespace: row.namespace,
    name: row.name,
    userName: row.user_name,
    keyPrefix: row.key_prefix,
    routing: row.routing,
    bedrock: {
      region: row.bedrock_region,
      api: row.bedrock_api,
      model: row.bedrock_model,
      modelMap: row.bedrock_model_map,
    },
    ...(row.valid_until === null ? {} : { validUntil: new Date(row.valid_until).getTime() }),
    limits: { key: row.key_limits ?? {}, user: row.user_limits ?? {} },
  };
}

/** Channel on which every change to users/access_keys is announced (see the initial migration). */
export const keyChangesChannel = 'ccproxy_keys';

/** How the newest BedrockKey bound to an access key authenticates: its encrypted API key, or the proxy's AWS identity. */
export type StoredBedrockAuth = { auth: 'ApiKey'; ciphertext: Buffer } | { auth: 'AwsIdentity' };

export async function findBedrockAuth(db: Queryable, accessKeyId: string): Promise<StoredBedrockAuth | undefined> {
  const rows = await db.query<{ auth: 'ApiKey' | 'AwsIdentity'; ciphertext: Buffer | Uint8Array | null }>(
    'SELECT b.auth, b.ciphertext FROM bedrock_keys b WHERE b.access_key_id = $1 ORDER BY b.updated_at DESC LIMIT 1',
    [accessKeyId],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return row.auth === 'AwsIdentity' || row.ciphertext === null
    ? { auth: 'AwsIdentity' }
    : { auth: 'ApiKey', ciphertext: Buffer.from(row.ciphertext) };
}

/** The newest encrypted Bedrock API key bound to an access key, if any (none for an AWS identity). */
export async function findBedrockCiphertext(db: Queryable, accessKeyId: string): Promise<Buffer | undefined> {
  const stored = await findBedrockAuth(db, accessKeyId);
  return stored?.auth === 'ApiKey' ? stored.ciphertext : undefined;
}
