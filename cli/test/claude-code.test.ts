import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  runClaudeCode,
  startAnthropicServer,
  startBedrockServer,
  startCcproxy,
  type AnthropicTestServer,
  type BedrockTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Claude Code itself, through `ccproxy local` started the way `npm start` starts it (embedded
 * PGlite, the examples folder, the printed base URL): a Bash tool round trip.
 */
describe('Claude Code through the proxy', () => {
  let dir: string;
  let upstream: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let proxy: CcproxyProcess;
  let runs = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-claude-'));
    await cp(join(repo, 'examples', 'local'), join(dir, 'manifests'), { recursive: true });
    // The example key gets a Bedrock key, so it can fail over.
    await writeFile(
      join(dir, 'manifests', 'bedrock.yaml'),
      `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: alice-laptop-bedrock, namespace: team-a }\nspec: { accessKeyRef: { name: alice-laptop }, secretRef: { name: team-a-bedrock, key: apiKey } }\n---\n` +
        `apiVersion: v1\nkind: Secret\nmetadata: { name: team-a-bedrock, namespace: team-a }\nstringData: { apiKey: bedrock-key-for-claude-test }\n`,
    );
    upstream = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: 'bedrock-key-for-claude-test' });
    proxy = await startCcproxy(['local', '--manifests', join(dir, 'manifests')], {
      CCPROXY_DATA_DIR: join(dir, '.data'),
      ANTHROPIC_UPSTREAM_URL: upstream.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([upstream?.close(), bedrock?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * `claude -p` in a scratch HOME and work dir, pointed at the base URL the start banner printed
   * (test/src/claude-code.ts: stream-json, nothing phones home); its result and the tool results
   * it fed back, as the user saw them.
   */
  async function runClaude(prompt: string, baseUrl = proxy.baseUrls[0] ?? ''): Promise<string> {
    runs += 1;
    const work = join(dir, `work-${runs}`);
    await mkdir(work);
    await writeFile(join(work, 'marker.txt'), 'seen-by-claude\n');
    const run = await runClaudeCode({
      baseUrl,
      prompt,
      home: join(dir, `home-${runs}`),
      cwd: work,
      args: ['--allowedTools', 'Bash'],
      timeoutMs: 120_000,
    });
    expect(run.result?.is_error, JSON.stringify(run.result)).toBe(false);
    return [run.result?.result ?? '', ...run.toolResults.map((result) => result.content)].join('\n');
  }

  it('runs a Bash tool round trip with the base URL the start banner printed', async () => {
    expect(proxy.baseUrls).toHaveLength(1);
    const token = `round-trip-${process.pid}`;
    const stdout = await runClaude(`RUN_BASH:echo ${token} && cat marker.txt`);
    expect(stdout).toContain(`Tool said: ${token}`);
    expect(stdout).toContain('seen-by-claude');

    const messages = upstream.requests.filter((r) => r.path.startsWith('/v1/messages'));
    expect(messages.length).toBeGreaterThanOrEqual(2);
    for (const received of messages) {
      expect(received.path).toBe('/v1/messages?beta=true');
      expect(received.headers['x-api-key']).toBe('sk-ant-developer-own');
      expect(received.headers['anthropic-beta']).toMatch(/\S/);
      expect(received.headers['anthropic-version']).toBe('2023-06-01');
    }
    const withResult = messages.find((r) => r.body.includes('"tool_result"'));
    expect(withResult?.body.toString()).toContain(token);
    expect(withResult?.headers['x-claude-code-session-id']).toMatch(/\S/);
  });

  it.each([
    [
      'answers 529',
      () =>
        upstream.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' })),
    ],
    [
      'answers 429',
      () =>
        upstream.respondWith(() => ({
          kind: 'error',
          status: 429,
          type: 'rate_limit_error',
          message: 'Rate limited',
          headers: { 'retry-after': '30' },
        })),
    ],
    [
      'answers 500',
      () => upstream.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: 'Internal error' })),
    ],
    ['resets the connection', () => upstream.respondWith(() => ({ kind: 'reset' }))],
  ])('completes the same round trip on the strict Bedrock server when Anthropic %s', async (_case, breakAnthropic) => {
    breakAnthropic();
    const before = bedrock.requests.length;
    const token = `failover-${runs}`;
    try {
      const stdout = await runClaude(`RUN_BASH:echo ${token} && cat marker.txt`);
      expect(stdout).toContain(`Tool said: ${token}`);
      expect(stdout).toContain('seen-by-claude');
    } finally {
      upstream.respondWith(undefined);
    }
    const served = bedrock.requests.slice(before);
    expect(served.length).toBeGreaterThanOrEqual(2);
    expect(served.every((r) => r.modelId === 'global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBe(true);
    // The key names no bedrock.api: the default, InvokeModel, with Claude Code's own body.
    expect(served.map((r) => r.operation).every((op) => op.startsWith('InvokeModel'))).toBe(true);
    expect(JSON.stringify(served.at(-1)?.body)).toContain('"type":"tool_result"');
  });

  it('completes the same round trip on Bedrock when Anthropic cannot be reached at all', async () => {
    const unreachable = await startCcproxy(['local', '--manifests', join(dir, 'manifests')], {
      CCPROXY_DATA_DIR: join(dir, '.data-unreachable'),
      ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}`,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    });
    try {
      const before = bedrock.requests.length;
      const stdout = await runClaude('RUN_BASH:echo unreachable && cat marker.txt', unreachable.baseUrls[0]);
      expect(stdout).toContain('Tool said: unreachable');
      expect(stdout).toContain('seen-by-claude');
      expect(bedrock.requests.length - before).toBeGreaterThanOrEqual(2);
    } finally {
      await unreachable.stop();
    }
  });
});
