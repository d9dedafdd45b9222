import { execFile as execFileCallback } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { aptInstall } from './apt-install.ts';
import { longStep } from './progress.ts';
import { exists } from './files.ts';

const execFile = promisify(execFileCallback);

export interface VenvSpec {
  /** Names the venv in the cache; include the pinned version so a bump installs anew. */
  readonly name: string;
  /** pip requirements, pinned. */
  readonly requirements: readonly string[];
  /**
   * A requirements file pinning every package by version and hash: installed with
   * `--require-hashes --no-deps`, so nothing is resolved at install time and a changed wheel fails.
   */
  readonly hashedRequirementsFile?: string;
  /** How long the install usually takes on this machine kind, for the progress lines. */
  readonly expectedSeconds: number;
}

/**
 * A Python from a venv in the user cache (`~/.cache/ccproxy/<name>`), installed from PyPI on
 * first use. Built beside its final path and renamed into place, so parallel vitest workers and
 * killed installs never leave a half venv that later runs trust; the loser of a race discards
 * its copy. Run tools with `python -m module`, not their console scripts, whose shebangs hold
 * the build path the rename invalidates.
 */
export async function ensurePythonVenv(spec: VenvSpec): Promise<string> {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ccproxy');
  const venv = join(cache, spec.name);
  const python = join(venv, 'bin', 'python');
  if (await exists(python)) return python;
  await mkdir(cache, { recursive: true });
  const building = `${venv}.building-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  const what =
    spec.hashedRequirementsFile === undefined
      ? spec.requirements.join(' ')
      : `${spec.name} (every package pinned by version and hash)`;
  const pinned =
    spec.hashedRequirementsFile === undefined
      ? []
      : // --no-compile: a large tool (checkov: ~96 packages) installs 2.4x faster (measured 259 s
        // against 626 s on a loaded 2-core machine); Python writes the bytecode of what it imports.
        ['--require-hashes', '--no-deps', '--no-compile', '-r', spec.hashedRequirementsFile];
  await longStep(`installing ${what} into ${venv} (first run on this machine)`, spec, async () => {
    try {
      await makeVenv(building);
      await execFile(
        join(building, 'bin', 'python'),
        [
          '-m',
          'pip',
          'install',
          '--quiet',
          '--disable-pip-version-check',
          '--no-input',
          ...pinned,
          ...spec.requirements,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      await rename(building, venv).catch(async (error: unknown) => {
        if (!(await exists(python))) throw error; // another worker won the race
      });
    } finally {
      await rm(building, { recursive: true, force: true });
    }
  });
  return python;
}

/**
 * `python3 -m venv`; on a Debian python3 without its venv module (no ensurepip), installs
 * python3-venv once and tries again, so a fresh machine needs nothing done by hand.
 */
async function makeVenv(dir: string): Promise<void> {
  try {
    await execFile('python3', ['-m', 'venv', dir]);
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    if (!/ensurepip|python3-venv/.test(stderr ?? '')) throw error;
    await rm(dir, { recursive: true, force: true });
    await aptInstall(['python3-venv']);
    await execFile('python3', ['-m', 'venv', dir]);
  }
}
