import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, track, type ProxyProcess } from './processes.ts';

const run = promisify(execFile);
export const litellmVersion = '1.110.2';
const masterKey = 'sk-bench-litellm-master-7f3c9a1e5b2d4c6f8a0e';
const requirements = fileURLToPath(new URL('../peers/litellm-requirements.txt', import.meta.url));

/** Where the bench keeps peers it installs on demand (never in `npm test`): `CCPROXY_BENCH_CACHE` or ~/.cache/ccproxy/bench-peers. */
export const peerCache = (): string =>
  process.env.CCPROXY_BENCH_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ccproxy', 'bench-peers');

export type PeerStart = (ProxyProcess & { pid: number; headers: Record<string, string> }) | { cannotRun: string };

/**
 * LiteLLM's proxy, installed on first use into the cache from `bench/peers/litellm-requirements.txt`
 * (every package pinned by version and wheel hash, `--require-hashes --no-deps`: nothing resolved
 * at install time), serving `/v1/messages` to the same upstream: one worker, logging at WARNING,
 * no database, a master key (it refuses to start without one); `x-*` client headers forwarded so the upstream's `x-bench-*`
 * shaping reaches it.
 */
export async function startLiteLlm(upstreamUrl: string): Promise<PeerStart> {
  const home = join(peerCache(), `litellm-${litellmVersion}`);
  const bin = join(home, 'venv', 'bin');
  try {
    if (!existsSync(join(bin, 'litellm'))) {
      console.log(`[bench] installing LiteLLM ${litellmVersion} (pinned, hash-checked) into ${home}`);
      await mkdir(home, { recursive: true });
      await run('python3', ['-m', 'venv', '--clear', join(home, 'venv')]);
      await run(join(bin, 'pip'), ['install', '--quiet', '--require-hashes', '--no-deps', '-r', requirements], {
        maxBuffer: 1 << 24,
        timeout: 900_000,
      });
    }
  } catch (error) {
    return { cannotRun: `install failed: ${firstLine(error)}` };
  }
  const config = join(home, 'bench-config.yaml');
  await writeFile(
    config,
    [
      'model_list:',
      '  - model_name: claude-bench',
      '    litellm_params:',
      '      model: anthropic/claude-bench',
      `      api_base: ${upstreamUrl}`,
      '      api_key: sk-ant-bench',
      'litellm_settings:',
      '  set_verbose: false',
      'general_settings:',
      '  forward_client_headers_to_llm_api: true',
      // LiteLLM refuses to start without a strong master key: auth on, as a deployment has it.
      `  master_key: ${masterKey}`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  // Its stderr goes to a file in the cache, so a start that fails says why.
  const log = join(home, 'litellm.log');
  const child = spawn(
    join(bin, 'litellm'),
    ['--config', config, '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'],
    {
      env: {
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        HOME: home,
        LITELLM_LOG: 'WARNING',
        LITELLM_LOCAL_MODEL_COST_MAP: 'True',
        NO_DOCKER: 'True',
      },
      cwd: home,
      stdio: ['ignore', 'ignore', openSync(log, 'w')],
    },
  );
  try {
    const proxy = await track(child, `http://127.0.0.1:${port}`, '/health/liveliness', 120_000);
    return { ...proxy, headers: { authorization: `Bearer ${masterKey}` } };
  } catch (error) {
    child.kill('SIGKILL');
    const said = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' ⏎ ');
    return { cannotRun: `did not start: ${firstLine(error)}; its log (${log}) ends: ${said.slice(-400)}` };
  }
}

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
