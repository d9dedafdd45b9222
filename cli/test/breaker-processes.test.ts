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
  type BedrockTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';

const key = 'ak_breaker_process_key_0123456789abcdefgh';
const manifests = documents(
  proxyUser('team-b', 'fay'),
  accessKey('team-b', 'fay-key', {
    user: 'fay',
    routing: 'PlanWithFailover',
    bedrockModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
  }),
  secret('team-b', 'fay-key', { accessKey: key }),
  bedrockKey('team-b', 'fay-bedrock', { accessKey: 'fay-key', secretName: 'team-b-bedrock' }),
  secret('team-b', 'team-b-bedrock', { apiKey: 'bedrock-key-for-breaker-test' }),
);

/** The breaker's state is shared by separate processes through Postgres, and survives a restart. */
describe('circuit breaker across proxy processes', () => {
  let dir: string;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let env: Record<string, string>;
  const processes: CcproxyProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-breaker-'));
    await writeFile(join(dir, 'fay.yaml'), manifests);
    anthropic = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: 'bedrock-key-for-breaker-test' });
    env = {
      DATABASE_URL: await createTestDatabase(inject('postgresUrl')),
      CCPROXY_KEY_HASHER_SECRET: 'breaker-test-hasher-secret-0123456789',
      CCPROXY_DATA_DIR: join(dir, '.data'),
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    };
    processes.push(await startCcproxy(['local', '--manifests', dir], env));
    processes.push(await startCcproxy(['local', '--manifests', dir], env));
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  const send = async (proxy: CcproxyProcess, session: string) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
      headers: { 'x-api-key': 'sk-ant-x', 'x-claude-code-session-id': session },
    });
    const body = (await response.json()) as { content?: Array<{ text?: string }> };
    return body.content?.[0]?.text;
  };

  it('opens on one process, is honoured by the other and by a restarted one', async () => {
    const [a, b] = processes as [CcproxyProcess, CcproxyProcess];
    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    for (const session of ['s1', 's2', 's3']) expect(await send(a, session)).toBe('Hello from the Bedrock test server');
    const touched = anthropic.requests.length;
    // The failure that opened it is stored just after that answer (not awaited, for its time to
    // first byte) and announced to the other process: a moment, longer on a loaded machine.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await send(b, 'fresh-on-b')).toBe('Hello from the Bedrock test server');
    expect(anthropic.requests.length, 'the other process did not try Anthropic').toBe(touched);

    await b.stop();
    const restarted = await startCcproxy(['local', '--manifests', dir], env);
    processes.push(restarted);
    expect(await send(restarted, 'after-restart')).toBe('Hello from the Bedrock test server');
    expect(anthropic.requests.length, 'the restarted process knew the breaker was open').toBe(touched);
    anthropic.respondWith(undefined);
  });
});
