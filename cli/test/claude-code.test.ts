import { execFile as execFileCallback } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicServer, startCcproxy, type AnthropicTestServer, type CcproxyProcess } from '@ccproxy/test-harness';

const execFile = promisify(execFileCallback);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const claude = join(repo, 'node_modules', '@anthropic-ai', 'claude-code', 'bin', 'claude.exe');

/**
 * Claude Code itself, through `ccproxy local` started the way `npm start` starts it (embedded
 * PGlite, the examples folder, the printed base URL): a Bash tool round trip.
 */
describe('Claude Code through the proxy', () => {
  let dir: string;
  let upstream: AnthropicTestServer;
  let proxy: CcproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-claude-'));
    await cp(join(repo, 'examples', 'local'), join(dir, 'manifests'), { recursive: true });
    upstream = await startAnthropicServer();
    proxy = await startCcproxy(['local', '--manifests', join(dir, 'manifests')], { CCPROXY_DATA_DIR: join(dir, '.data'), ANTHROPIC_UPSTREAM_URL: upstream.url });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a Bash tool round trip with the base URL the start banner printed', async () => {
    expect(proxy.baseUrls).toHaveLength(1);
    const baseUrl = proxy.baseUrls[0] as string;
    const home = join(dir, 'home');
    const work = join(dir, 'work');
    await mkdir(home);
    await mkdir(work);
    await writeFile(join(work, 'marker.txt'), 'seen-by-claude\n');
    const token = `round-trip-${process.pid}`;
    const { stdout } = await execFile(claude, ['-p', `RUN_BASH:echo ${token} && cat marker.txt`, '--allowedTools', 'Bash'], {
      cwd: work,
      timeout: 120_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        ANTHROPIC_BASE_URL: baseUrl,
        ANTHROPIC_API_KEY: 'sk-ant-developer-own',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
      },
    });
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
});
