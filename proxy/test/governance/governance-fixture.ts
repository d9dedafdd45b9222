import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { inject } from 'vitest';
import { Agent, request } from 'undici';
import {
  createKeyHasher,
  encryptSecret,
  generateAccessKey,
  keyPrefix,
  KmsKeyWrapper,
  secretFingerprint,
  upsertAccessKey,
  upsertBedrockKey,
  upsertUser,
  type Database,
  type KeyWrapper,
  type Limits,
  type Routing,
} from '@ccproxy/core';
import { startCcproxy, type CcproxyProcess } from '@ccproxy/test-harness';

export const hasherSecret = 'governance-test-hasher-secret-0123456789abcdef';
const hashKey = createKeyHasher(hasherSecret);

/** Two (or more) real `ccproxy proxy` processes on one Postgres: the replicas of a deployment. */
export async function startReplicas(
  count: number,
  env: Record<string, string>,
): Promise<{ replicas: CcproxyProcess[]; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-gov-'));
  const replicas = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startCcproxy(['proxy'], {
        CCPROXY_KEY_HASHER_SECRET: hasherSecret,
        CCPROXY_DATA_DIR: join(dir, `replica-${i}`),
        CCPROXY_LOG_LEVEL: 'warn',
        ...env,
      }),
    ),
  );
  return {
    replicas,
    stop: async () => {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A KMS key on the run's moto: the replicas' env to unwrap Bedrock keys with it, and a wrapper to seed them. */
export async function kmsForReplicas(): Promise<{ env: Record<string, string>; wrapper: KeyWrapper }> {
  const env = {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_KMS: inject('motoUrl'),
  };
  const client = new KMSClient({
    region: env.AWS_REGION,
    endpoint: env.AWS_ENDPOINT_URL_KMS,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  const keyId = (await client.send(new CreateKeyCommand({ Description: 'ccproxy governance test' }))).KeyMetadata
    ?.KeyId;
  if (keyId === undefined) throw new Error('moto made no KMS key');
  return { env: { ...env, CCPROXY_KMS_KEY_ID: keyId }, wrapper: new KmsKeyWrapper({ keyId, client }) };
}

let seeded = 0;

/** A user and one key with the limits given, straight into Postgres (what the operator writes). */
export async function seedKey(
  db: Database,
  options: {
    keyLimits?: Limits;
    userLimits?: Limits;
    routing?: Routing;
    namespace?: string;
    /** Another key of this already seeded user (its limits stay as they are). */
    owner?: { namespace: string; userName: string; userId: string };
    /** A Bedrock API key bound to the access key (envelope-encrypted with `wrapper`). */
    bedrockKey?: { apiKey: string; wrapper: KeyWrapper };
  } = {},
): Promise<{ key: string; namespace: string; name: string; userName: string; userId: string; keyId: string }> {
  seeded += 1;
  const namespace = options.owner?.namespace ?? options.namespace ?? `team-gov-${seeded}`;
  const name = `key-${seeded}`;
  const userName = options.owner?.userName ?? `user-${seeded}`;
  const key = generateAccessKey();
  const userId =
    options.owner?.userId ??
    (await upsertUser(db, {
      namespace,
      name: userName,
      uid: `u-${seeded}`,
      displayName: '',
      description: '',
      suspended: false,
      ...(options.userLimits === undefined ? {} : { limits: options.userLimits }),
    }));
  await upsertAccessKey(
    db,
    {
      namespace,
      name,
      uid: `k-${seeded}`,
      userId,
      keyHash: hashKey(key),
      keyPrefix: keyPrefix(key),
      revoked: false,
      routing: options.routing ?? 'PlanWithFailover',
      bedrock: {
        region: 'us-east-1',
        api: 'InvokeModel',
        model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
        modelMap: {},
      },
      ...(options.keyLimits === undefined ? {} : { limits: options.keyLimits }),
    },
    0,
  );
  const keyId = (
    await db.query<{ id: string }>('SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2', [
      namespace,
      name,
    ])
  )[0]?.id;
  if (options.bedrockKey !== undefined)
    await upsertBedrockKey(db, {
      namespace,
      name: `${name}-bedrock`,
      uid: `b-${seeded}`,
      accessKeyId: keyId ?? '',
      ciphertext: await encryptSecret(options.bedrockKey.apiKey, options.bedrockKey.wrapper),
      fingerprint: secretFingerprint(options.bedrockKey.apiKey),
      api: null,
    });
  return { key, namespace, name, userName, userId, keyId: keyId ?? '' };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export const agent = new Agent({ connections: 64 });

export async function send(
  baseUrl: string,
  key: string,
  options: { model?: string; session?: string; path?: string; text?: string; stream?: boolean } = {},
): Promise<Answer> {
  const response = await request(`${baseUrl}/ak/${key}${options.path ?? '/v1/messages'}`, {
    method: 'POST',
    dispatcher: agent,
    body: JSON.stringify({
      model: options.model ?? 'claude-sonnet-4-5-20250929',
      max_tokens: 16,
      ...(options.stream === true ? { stream: true } : {}),
      messages: [{ role: 'user', content: options.text ?? 'hello' }],
    }),
    headers: {
      'x-api-key': 'sk-ant-governance',
      'content-type': 'application/json',
      ...(options.session === undefined ? {} : { 'x-claude-code-session-id': options.session }),
    },
  });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

/** Tokens and cost stored for a key (every replica's flushed usage; the request log's unmetered failure rows left out). */
export async function storedUsage(
  db: Database,
  keyId: string,
): Promise<{ requests: number; tokens: number; microUsd: number }> {
  const rows = await db.query<{ requests: string; tokens: string; micro_usd: string }>(
    `SELECT count(*)::text AS requests,
            coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens), 0)::text AS tokens,
            coalesce(sum(cost_micro_usd), 0)::text AS micro_usd
       FROM token_usage WHERE access_key_id = $1 AND metered`,
    [keyId],
  );
  return { requests: Number(rows[0]?.requests), tokens: Number(rows[0]?.tokens), microUsd: Number(rows[0]?.micro_usd) };
}

export async function metric(baseUrl: string, name: string): Promise<string> {
  const response = await request(`${baseUrl}/metrics`, { dispatcher: agent });
  const text = await response.body.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .join('\n');
}
