import type { Limits } from '../governance/limits.ts';
import type { Queryable } from './database.ts';
import type { BedrockApi, Routing } from './key-records.ts';

/** Writes done by reconcilers: each resource becomes one row, keyed by namespace/name. */

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface UserRow extends ObjectRef {
  readonly displayName: string;
  readonly description: string;
  readonly suspended: boolean;
  /** spec.budget and spec.rateLimits; absent: none. */
  readonly limits?: Limits;
}

export async function upsertUser(db: Queryable, user: UserRow): Promise<string> {
  // Another uid under the same name is another user (the old one was deleted and a new one
  // created): the old row goes, and with it (ON DELETE CASCADE) every key of the old user, so
  // no key of a deleted user comes back to life in a new user of the same name.
  await db.query('DELETE FROM users WHERE namespace = $1 AND name = $2 AND uid <> $3', [
    user.namespace,
    user.name,
    user.uid,
  ]);
  const rows = await db.query<{ id: string }>(
    `INSERT INTO users (namespace, name, uid, display_name, description, suspended, limits)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (namespace, name) DO UPDATE
       SET uid = EXCLUDED.uid, display_name = EXCLUDED.display_name, description = EXCLUDED.description,
           suspended = EXCLUDED.suspended, limits = EXCLUDED.limits, updated_at = now()
       WHERE (users.uid, users.display_name, users.description, users.suspended, users.limits)
             IS DISTINCT FROM (EXCLUDED.uid, EXCLUDED.display_name, EXCLUDED.description, EXCLUDED.suspended, EXCLUDED.limits)
     RETURNING id::text`,
    [
      user.namespace,
      user.name,
      user.uid,
      user.displayName,
      user.description,
      user.suspended,
      JSON.stringify(user.limits ?? {}),
    ],
  );
  return rows[0]?.id ?? (await findUserId(db, user.namespace, user.name)) ?? failMissing('user', user);
}

export async function findUserId(db: Queryable, namespace: string, name: string): Promise<string | undefined> {
  return (await findUser(db, namespace, name))?.id;
}

export async function findUser(
  db: Queryable,
  namespace: string,
  name: string,
): Promise<{ id: string; uid: string; suspended: boolean } | undefined> {
  const rows = await db.query<{ id: string; uid: string; suspended: boolean }>(
    'SELECT id::text, uid, suspended FROM users WHERE namespace = $1 AND name = $2',
    [namespace, name],
  );
  return rows[0];
}

export interface AccessKeyRow extends ObjectRef {
  readonly userId: string;
  readonly keyHash: string;
  readonly keyPrefix: string;
  readonly revoked: boolean;
  readonly routing: Routing;
  /** `api` null: not set on the AccessKey (its BedrockKey's `spec.api`, else InvokeModel, decides). */
  readonly bedrock: {
    region: string | null;
    api: BedrockApi | null;
    model: string | null;
    modelMap: Record<string, string>;
  };
  /** spec.budget and spec.rateLimits; absent: none. */
  readonly limits?: Limits;
}

/**
 * Upserts the key. When the hash changes (rotation), the old hash stays valid for
 * `rotationGraceSeconds`; unchanged rows are not rewritten, so level-triggered reconciles
 * do not wake every proxy for nothing.
 */
export async function upsertAccessKey(db: Queryable, key: AccessKeyRow, rotationGraceSeconds: number): Promise<void> {
  await db.query(
    `INSERT INTO access_keys (namespace, name, uid, user_id, key_hash, key_prefix, status, routing,
                              bedrock_region, bedrock_api, bedrock_model, bedrock_model_map, limits)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)
     ON CONFLICT (namespace, name) DO UPDATE SET
       uid = EXCLUDED.uid, user_id = EXCLUDED.user_id, key_hash = EXCLUDED.key_hash, key_prefix = EXCLUDED.key_prefix,
       status = EXCLUDED.status, routing = EXCLUDED.routing, bedrock_region = EXCLUDED.bedrock_region,
       bedrock_api = EXCLUDED.bedrock_api, bedrock_model = EXCLUDED.bedrock_model, bedrock_model_map = EXCLUDED.bedrock_model_map,
       limits = EXCLUDED.limits,
       previous_key_hash = CASE WHEN access_keys.key_hash <> EXCLUDED.key_hash THEN access_keys.key_hash ELSE access_keys.previous_key_hash END,
       previous_key_expires_at = CASE WHEN access_keys.key_hash <> EXCLUDED.key_hash
                                      THEN now() + make_interval(secs => $13) ELSE access_keys.previous_key_expires_at END,
       updated_at = now()
     WHERE (access_keys.uid, access_keys.user_id, access_keys.key_hash, access_keys.key_prefix, access_keys.status, access_keys.routing,
            access_keys.bedrock_region, access_keys.bedrock_api, access_keys.bedrock_model, access_keys.bedrock_model_map, access_keys.limits)
           IS DISTINCT FROM (EXCLUDED.uid, EXCLUDED.user_id, EXCLUDED.key_hash, EXCLUDED.key_prefix, EXCLUDED.status, EXCLUDED.routing,
            EXCLUDED.bedrock_region, EXCLUDED.bedrock_api, EXCLUDED.bedrock_model, EXCLUDED.bedrock_model_map, EXCLUDED.limits)`,
    [
      key.namespace,
      key.name,
      key.uid,
      key.userId,
      key.keyHash,
      key.keyPrefix,
      key.revoked ? 'revoked' : 'active',
      key.routing,
      key.bedrock.region,
      key.bedrock.api,
      key.bedrock.model,
      JSON.stringify(key.bedrock.modelMap),
      rotationGraceSeconds,
      JSON.stringify(key.limits ?? {}),
    ],
  );
}

/** Marks a key revoked (used before a resource disappears, and for revocation). */
export async function revokeAccessKey(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query(
    `UPDATE access_keys SET status = 'revoked', updated_at = now() WHERE namespace = $1 AND name = $2 AND status <> 'revoked'`,
    [namespace, name],
  );
}

/**
 * Takes a key out of service while its resource is in conflict (two AccessKeys naming one
 * Secret): revoked, and its hashes replaced by a marker no key hashes to, so the shared key
 * stops working at once (rotation grace included) and the other AccessKey can later take that
 * hash without colliding with this row. A later upsert restores the row.
 */
export async function disableAccessKey(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query(
    `UPDATE access_keys
        SET status = 'revoked', key_hash = 'disabled:' || id::text, previous_key_hash = NULL,
            previous_key_expires_at = NULL, updated_at = now()
      WHERE namespace = $1 AND name = $2 AND key_hash <> 'disabled:' || id::text`,
    [namespace, name],
  );
}

export async function deleteAccessKey(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query('DELETE FROM access_keys WHERE namespace = $1 AND name = $2', [namespace, name]);
}

export async function deleteUser(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query('DELETE FROM users WHERE namespace = $1 AND name = $2', [namespace, name]);
}

/** How a BedrockKey authenticates: its own Bedrock API key, or the proxy's AWS identity (SigV4). */
export type BedrockAuth = 'ApiKey' | 'AwsIdentity';

export interface BedrockKeyRow extends ObjectRef {
  readonly accessKeyId: string;
  /** `ApiKey` when absent. */
  readonly auth?: BedrockAuth;
  /** The envelope-encrypted API key and its fingerprint: set for `ApiKey`, null for `AwsIdentity`. */
  readonly ciphertext: Buffer | null;
  readonly fingerprint: string | null;
  /** The default Bedrock API for its AccessKey (`spec.api`); null or absent: not set. */
  readonly api?: BedrockApi | null;
}

/** Stores the envelope; rewritten only when the key changed (same fingerprint → row untouched). */
export async function upsertBedrockKey(db: Queryable, key: BedrockKeyRow): Promise<void> {
  await db.query(
    `INSERT INTO bedrock_keys (namespace, name, uid, access_key_id, auth, ciphertext, fingerprint, api)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (namespace, name) DO UPDATE SET
       uid = EXCLUDED.uid, access_key_id = EXCLUDED.access_key_id, auth = EXCLUDED.auth,
       ciphertext = EXCLUDED.ciphertext, fingerprint = EXCLUDED.fingerprint, api = EXCLUDED.api, updated_at = now()
     WHERE (bedrock_keys.uid, bedrock_keys.access_key_id, bedrock_keys.auth, bedrock_keys.fingerprint, bedrock_keys.api)
           IS DISTINCT FROM (EXCLUDED.uid, EXCLUDED.access_key_id, EXCLUDED.auth, EXCLUDED.fingerprint, EXCLUDED.api)`,
    [
      key.namespace,
      key.name,
      key.uid,
      key.accessKeyId,
      key.auth ?? 'ApiKey',
      key.ciphertext,
      key.fingerprint,
      key.api ?? null,
    ],
  );
}

/** What is stored for a BedrockKey: enough to tell whether it must be encrypted again. */
export async function findBedrockKeyRow(
  db: Queryable,
  namespace: string,
  name: string,
): Promise<
  | {
      accessKeyId: string;
      auth: BedrockAuth;
      fingerprint: string | null;
      ciphertext: Buffer | null;
      api: BedrockApi | null;
    }
  | undefined
> {
  const rows = await db.query<{
    access_key_id: string;
    auth: BedrockAuth;
    fingerprint: string | null;
    ciphertext: Buffer | null;
    api: BedrockApi | null;
  }>(
    'SELECT access_key_id::text, auth, fingerprint, ciphertext, api FROM bedrock_keys WHERE namespace = $1 AND name = $2',
    [namespace, name],
  );
  const row = rows[0];
  return row === undefined
    ? undefined
    : {
        accessKeyId: row.access_key_id,
        auth: row.auth,
        fingerprint: row.fingerprint,
        ciphertext: row.ciphertext === null ? null : Buffer.from(row.ciphertext),
        api: row.api,
      };
}

export async function deleteBedrockKey(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query('DELETE FROM bedrock_keys WHERE namespace = $1 AND name = $2', [namespace, name]);
}

export async function findAccessKeyId(db: Queryable, namespace: string, name: string): Promise<string | undefined> {
  const rows = await db.query<{ id: string }>('SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2', [
    namespace,
    name,
  ]);
  return rows[0]?.id;
}

/** namespace/name/uid of every row of a table, to find rows whose resource is gone. */
export async function listRefs(
  db: Queryable,
  table: 'users' | 'access_keys' | 'bedrock_keys' | 'team_budgets',
): Promise<Array<{ namespace: string; name: string; uid: string }>> {
  return db.query<{ namespace: string; name: string; uid: string }>(`SELECT namespace, name, uid FROM ${table}`);
}

function failMissing(kind: string, ref: ObjectRef): never {
  throw new Error(`${kind} ${ref.namespace}/${ref.name} vanished during upsert`);
}
