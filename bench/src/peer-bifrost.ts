import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { peerCache, type PeerStart } from './peer-litellm.ts';

const run = promisify(execFile);
/** The one exact release tried (the module proxy lists no versions of this module; v1.3.0 was refused before). */
export const bifrostModule = 'github.com/maximhq/bifrost/transports';
export const bifrostVersion = 'v1.6.11';

/**
 * Bifrost (Go): built from its Go module, pinned to one exact release, into the cache. The Go
 * module proxy reachable here refuses that release's zip (HTTP 403 "This module version is not
 * available"), so this reports why it cannot run. A refusal is final (registry rule), so it is
 * remembered in the cache and not asked again on this machine.
 */
export async function startBifrost(): Promise<PeerStart> {
  const home = join(peerCache(), `bifrost-${bifrostVersion}`);
  const refused = join(home, 'refused.txt');
  if (existsSync(refused)) return { cannotRun: (await readFile(refused, 'utf8')).trim() };
  await mkdir(join(home, 'mod'), { recursive: true });
  const env = { ...process.env, GOPATH: join(home, 'gopath'), GOFLAGS: '-modcacherw' };
  try {
    if (!existsSync(join(home, 'mod', 'go.mod')))
      await run('go', ['mod', 'init', 'ccproxy.bench/bifrost'], { cwd: join(home, 'mod'), env });
    await run('go', ['get', `${bifrostModule}@${bifrostVersion}`], { cwd: join(home, 'mod'), env, timeout: 600_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    const why =
      /403[^\n]*|not available[^\n]*/.exec(stderr)?.[0] ?? stderr.split('\n').find((l) => l.trim() !== '') ?? '';
    const reason = `the Go module proxy refuses ${bifrostModule}@${bifrostVersion} (${why.trim()})`;
    await writeFile(refused, `${reason}\n`);
    return { cannotRun: reason };
  }
  // Not reached on this machine so far: the module downloaded, but building and configuring its
  // HTTP gateway (bifrost-http, a config.json with an Anthropic provider at the bench upstream) is not written.
  return { cannotRun: `${bifrostModule}@${bifrostVersion} downloaded, but the bench does not build its gateway yet` };
}
