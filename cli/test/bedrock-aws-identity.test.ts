import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  accessKey,
  bedrockKey,
  createTestDatabase,
  documents,
  proxyUser,
  secret,
  startAnthropicServer,
  startBedrockServer,
  startCcproxy,
  type AnthropicTestServer,
  type AwsSecret,
  type BedrockTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';

const region = 'us-east-1';
const envIdentity = {
  accessKeyId: 'AKIACCPROXYTEST00001',
  secretAccessKey: 'ccproxy/test/secret+access/key0123456789',
  sessionToken: 'ccproxy-session-token-0123456789abcdef',
};
const keys = {
  failover: 'ak_aws_identity_failover_0123456789abcdefg',
  only: 'ak_aws_identity_bedrock_only_0123456789ab',
};
const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const manifests = documents(
  proxyUser('team-i', 'ida'),
  accessKey('team-i', 'failover', { user: 'ida', routing: 'PlanWithFailover', bedrockModel: model }),
  secret('team-i', 'failover', { accessKey: keys.failover }),
  bedrockKey('team-i', 'failover-bedrock', { accessKey: 'failover', auth: 'AwsIdentity' }),
  // One key per Bedrock API: the failover key takes the default (InvokeModel), this one Converse.
  accessKey('team-i', 'only', { user: 'ida', routing: 'BedrockOnly', bedrockModel: model, bedrockApi: 'Converse' }),
  secret('team-i', 'only', { accessKey: keys.only }),
  bedrockKey('team-i', 'only-bedrock', { accessKey: 'only', auth: 'AwsIdentity' }),
);
const viaBedrock = 'Hello from the Bedrock test server';

/** Moto's STS keeps the credentials it issued; the Bedrock test server looks them up there. */
async function motoIssued(motoUrl: string, accessKeyId: string): Promise<AwsSecret | undefined> {
  const data = (await (await fetch(`${motoUrl}/moto-api/data.json`)).json()) as {
    sts?: { AssumedRole?: Array<{ access_key_id: string; secret_access_key: string; session_token: string }> };
  };
  const role = data.sts?.AssumedRole?.find((r) => r.access_key_id === accessKeyId);
  return role === undefined ? undefined : { secretAccessKey: role.secret_access_key, sessionToken: role.session_token };
}

/**
 * BedrockKeys with `auth: AwsIdentity`: real `ccproxy` processes sign Bedrock requests with
 * SigV4 from the AWS default credential chain, and the Bedrock test server verifies every
 * signature independently (test/src/sigv4-verifier.ts).
 */
describe('Bedrock through the proxy’s AWS identity (SigV4)', () => {
  let dir: string;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let base: Record<string, string>;
  const processes: CcproxyProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-aws-identity-'));
    await writeFile(join(dir, 'ida.yaml'), manifests);
    await writeFile(join(dir, 'web-identity-token'), 'eyJhbGciOiJSUzI1NiJ9.test-web-identity.token');
    anthropic = await startAnthropicServer();
    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    bedrock = await startBedrockServer({
      aws: {
        region,
        secrets: (id) => (id === envIdentity.accessKeyId ? envIdentity : motoIssued(inject('motoUrl'), id)),
      },
    });
    base = {
      DATABASE_URL: await createTestDatabase(inject('postgresUrl')),
      CCPROXY_KEY_HASHER_SECRET: 'aws-identity-test-hasher-secret-0123456789',
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      AWS_REGION: region,
      // No shared profile files: only what each test sets.
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (name: string, env: Record<string, string>) => {
    const proxy = await startCcproxy(['local', '--manifests', dir], {
      ...base,
      CCPROXY_DATA_DIR: join(dir, `.data-${name}`),
      ...env,
    });
    processes.push(proxy);
    return proxy;
  };
  const ask = async (proxy: CcproxyProcess, key: string, options: { stream?: boolean; path?: string } = {}) => {
    const response = await fetch(`${proxy.url}/ak/${key}${options.path ?? '/v1/messages'}`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'claude-sonnet-4-5',
        max_tokens: 20,
        stream: options.stream === true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
      headers: { 'x-api-key': 'sk-ant-x', 'content-type': 'application/json' },
    });
    return { status: response.status, text: await response.text() };
  };

  it('fails over with a signature from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, for every operation', async () => {
    const proxy = await start('env', {
      AWS_ACCESS_KEY_ID: envIdentity.accessKeyId,
      AWS_SECRET_ACCESS_KEY: envIdentity.secretAccessKey,
      AWS_SESSION_TOKEN: envIdentity.sessionToken,
    });
    const seen = bedrock.requests.length;
    const json = await ask(proxy, keys.failover);
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text)).toMatchObject({ content: [{ type: 'text', text: viaBedrock }] });
    const stream = await ask(proxy, keys.only, { stream: true });
    expect(stream.status).toBe(200);
    expect(stream.text).toContain('event: message_stop');
    await ask(proxy, keys.only, { path: '/v1/messages/count_tokens' });
    const signed = bedrock.requests.slice(seen);
    expect(signed.map((r) => r.path.replace(/\/model\/[^/]+/, ''))).toEqual([
      '/invoke',
      '/converse-stream',
      '/count-tokens',
    ]);
    for (const request of signed) {
      expect(request.signedBy).toBe(envIdentity.accessKeyId);
      expect(request.headers['x-amz-security-token']).toBe(envIdentity.sessionToken);
    }
  });

  it('signs with credentials from a web identity token file (IRSA), assumed through STS', async () => {
    const proxy = await start('web-identity', {
      AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, 'web-identity-token'),
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/ccproxy-proxy',
      AWS_ROLE_SESSION_NAME: 'ccproxy-test',
      AWS_ENDPOINT_URL_STS: inject('motoUrl'),
    });
    const seen = bedrock.requests.length;
    const answer = await ask(proxy, keys.only);
    expect(answer.status, answer.text).toBe(200);
    const [request] = bedrock.requests.slice(seen);
    expect(request?.signedBy).toMatch(/^ASIA/);
  });

  it('wrong credentials: a clear Anthropic-shaped error, and no secret in any log line', async () => {
    const wrong = 'wrong/secret+access/key0123456789abcdefgh';
    const proxy = await start('wrong', {
      AWS_ACCESS_KEY_ID: envIdentity.accessKeyId,
      AWS_SECRET_ACCESS_KEY: wrong,
      AWS_SESSION_TOKEN: envIdentity.sessionToken,
    });
    const answer = await ask(proxy, keys.only);
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text)).toMatchObject({
      type: 'error',
      error: { type: 'api_error', message: expect.stringMatching(/Bedrock/) as unknown },
    });
    const unknown = await start('unknown', {
      AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNTOBEDROCK0',
      AWS_SECRET_ACCESS_KEY: wrong,
    });
    expect((await ask(unknown, keys.only)).status).toBe(500);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logs = [...proxy.output, ...unknown.output].join('\n');
    expect(logs).toMatch(/InvalidSignatureException|UnrecognizedClientException/);
    for (const secretValue of [wrong, envIdentity.secretAccessKey, envIdentity.sessionToken])
      expect(logs).not.toContain(secretValue);
  });
});
