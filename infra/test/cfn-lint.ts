import { execFile as execFileCallback } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCallback);

/** Pinned so every machine applies the same rules; bump deliberately (the venv is keyed by it). */
export const CFN_LINT_VERSION = '1.58.0';

/**
 * A Python with `cfnlint` at the pinned version, in a venv in the user cache built on first use
 * (PyPI is reachable, prebuilt binaries are not). Built beside its final path and renamed into
 * place, so parallel workers and killed installs never leave a half venv that later runs trust.
 */
export async function cfnLintPython(): Promise<string> {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const venv = join(cache, 'ccproxy', `cfn-lint-venv-${CFN_LINT_VERSION}`);
  const python = join(venv, 'bin', 'python');
  if (await exists(python)) return python;
  const building = `${venv}.building-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  await mkdir(join(cache, 'ccproxy'), { recursive: true });
  const started = Date.now();
  process.stderr.write(`installing cfn-lint ${CFN_LINT_VERSION} into ${venv} (first run on this machine)\n`);
  try {
    await execFile('python3', ['-m', 'venv', building]);
    await execFile(
      join(building, 'bin', 'python'),
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', `cfn-lint==${CFN_LINT_VERSION}`],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await rename(building, venv).catch(async (error: unknown) => {
      if (!(await exists(python))) throw error; // another worker won the race
    });
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  process.stderr.write(`installed cfn-lint in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return python;
}

export interface CfnLintMatch {
  readonly Rule: { readonly Id: string };
  readonly Message: string;
  readonly Level: string;
  readonly Filename: string;
  readonly Location: { readonly Path?: readonly (string | number)[] };
}

/**
 * Runs cfn-lint on templates and returns its findings (JSON format). Its entry point through the
 * venv's python, not the `cfn-lint` script, whose shebang holds the venv's build path.
 */
export async function cfnLint(
  templates: readonly string[],
  options: { regions?: readonly string[] } = {},
): Promise<CfnLintMatch[]> {
  const python = await cfnLintPython();
  const args = [
    '-c',
    'import sys; from cfnlint.runner import main; sys.exit(main())',
    '--format',
    'json',
    ...(options.regions === undefined ? [] : ['--regions', ...options.regions]),
    '--',
    ...templates,
  ];
  try {
    const { stdout } = await execFile(python, args, { maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout === '' ? '[]' : stdout) as CfnLintMatch[];
  } catch (error) {
    // Exit codes 2/4/8 mean "found errors/warnings/informational": the findings are on stdout.
    const { stdout, code } = error as { stdout?: string; code?: number };
    if (typeof code === 'number' && code > 0 && code < 32 && stdout !== undefined && stdout.startsWith('['))
      return JSON.parse(stdout) as CfnLintMatch[];
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
