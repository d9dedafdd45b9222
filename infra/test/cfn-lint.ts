import { execFile as execFileCallback } from 'node:child_process';
import { promisify } from 'node:util';
import { ensurePythonVenv } from '@ccproxy/test-harness';

const execFile = promisify(execFileCallback);

/** Pinned so every machine applies the same rules; bump deliberately (the venv is keyed by it). */
export const CFN_LINT_VERSION = '1.58.0';

/**
 * A Python with `cfnlint` at the pinned version, in a venv in the user cache built on first use
 * (PyPI is reachable, prebuilt binaries are not). Built beside its final path and renamed into
 * place, so parallel workers and killed installs never leave a half venv that later runs trust.
 */
export function cfnLintPython(): Promise<string> {
  return ensurePythonVenv({
    name: `cfn-lint-venv-${CFN_LINT_VERSION}`,
    requirements: [`cfn-lint==${CFN_LINT_VERSION}`],
    expectedSeconds: 40,
  });
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
