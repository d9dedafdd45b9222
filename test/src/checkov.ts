import { execFile as execFileCallback } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withLock } from './build-lock.ts';
import { ensurePythonVenv } from './python-venv.ts';

const execFile = promisify(execFileCallback);

/** The checkov release the chart, the cdk8s output and the CloudFormation templates are scanned with. */
export const CHECKOV_VERSION = '3.3.30';
/** checkov and its 95 dependencies, each pinned by version and wheel hash (see the file's header). */
const requirementsFile = fileURLToPath(new URL('../pinned/checkov-requirements.txt', import.meta.url));

/**
 * A Python with checkov, in a venv in the user cache (`~/.cache/ccproxy/checkov-venv-<version>-<hash
 * of the requirements file>`) built on first use from PyPI with `pip install --require-hashes
 * --no-deps`: nothing is resolved at install time and a wheel whose hash changed is refused. One
 * test run installs it while parallel ones wait on a lock (about a minute on 2 cores).
 */
export async function ensureCheckovPython(): Promise<string> {
  const digest = createHash('sha256').update(readFileSync(requirementsFile)).digest('hex').slice(0, 12);
  const name = `checkov-venv-${CHECKOV_VERSION}-${digest}`;
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ccproxy');
  await mkdir(cache, { recursive: true });
  return withLock(join(cache, `${name}.lock`), 'the install of checkov', () =>
    ensurePythonVenv({ name, requirements: [], hashedRequirementsFile: requirementsFile, expectedSeconds: 70 }),
  );
}

export interface CheckovFinding {
  readonly checkId: string;
  readonly checkName: string;
  /** `Kind.namespace.name` for Kubernetes, `AWS::Type.LogicalId` for CloudFormation. */
  readonly resource: string;
  readonly file: string;
  readonly lines: readonly number[];
}

interface CheckovReport {
  readonly check_type: string;
  readonly summary: { readonly passed: number; readonly failed: number; readonly parsing_errors: number };
  readonly results: {
    readonly failed_checks: ReadonlyArray<{
      check_id: string;
      check_name: string;
      resource: string;
      file_path: string;
      file_line_range: number[];
    }>;
  };
}

export interface CheckovResult {
  readonly failed: CheckovFinding[];
  readonly passed: number;
  readonly parsingErrors: number;
}

/**
 * Runs checkov over files with one framework (`kubernetes`, `cloudformation`) and returns its
 * failed checks. `--skip-download`: no call to Prisma Cloud for guidelines or policies (the
 * machine reaches package registries only, and the checks must not change under us).
 */
export async function checkov(
  files: readonly string[],
  framework: 'kubernetes' | 'cloudformation',
  cwd: string,
): Promise<CheckovResult> {
  const python = await ensureCheckovPython();
  const args = [
    '-c',
    'import sys; from checkov.main import Checkov; sys.exit(Checkov().run())',
    '--framework',
    framework,
    '--skip-download',
    '--compact',
    '--quiet',
    '--output',
    'json',
    ...files.flatMap((file) => ['--file', file]),
  ];
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', BC_SKIP_MAPPING: 'TRUE' };
  const stdout = await execFile(python, args, { cwd, env, maxBuffer: 256 * 1024 * 1024 }).then(
    (r) => r.stdout,
    // Exit code 1 means "found failed checks": the report is on stdout.
    (error: { stdout?: string; stderr?: string; code?: number }) => {
      if (error.code === 1 && error.stdout !== undefined && error.stdout.trim() !== '') return error.stdout;
      throw new Error(`checkov failed (exit ${String(error.code)}):\n${error.stderr ?? ''}`, { cause: error });
    },
  );
  const parsed = JSON.parse(stdout) as CheckovReport | CheckovReport[] | { passed: 0; failed: 0 };
  const reports = (Array.isArray(parsed) ? parsed : [parsed]).filter((r): r is CheckovReport => 'check_type' in r);
  return {
    failed: reports.flatMap((r) =>
      r.results.failed_checks.map((f) => ({
        checkId: f.check_id,
        checkName: f.check_name,
        resource: f.resource,
        file: f.file_path.replace(/^\//, ''),
        lines: f.file_line_range,
      })),
    ),
    passed: reports.reduce((sum, r) => sum + r.summary.passed, 0),
    parsingErrors: reports.reduce((sum, r) => sum + r.summary.parsing_errors, 0),
  };
}

/** A check the estate does not follow, on which resources (all when absent), and why. */
export interface CheckovSkip {
  readonly id: string;
  readonly resource?: RegExp;
  readonly reason: string;
}

/** Findings no skip entry covers, as `CHECK_ID resource file:lines (name)` lines a test prints. */
export function unskipped(findings: readonly CheckovFinding[], skips: readonly CheckovSkip[]): string[] {
  return findings
    .filter((f) => !skips.some((s) => s.id === f.checkId && (s.resource?.test(f.resource) ?? true)))
    .map((f) => `${f.checkId} ${f.resource} ${f.file}:${f.lines.join('-')} (${f.checkName})`);
}

/** Skip entries that matched no finding: the list keeps only what is still needed. */
export function unusedSkips(findings: readonly CheckovFinding[], skips: readonly CheckovSkip[]): string[] {
  return skips
    .filter((s) => !findings.some((f) => s.id === f.checkId && (s.resource?.test(f.resource) ?? true)))
    .map((s) => `${s.id}${s.resource === undefined ? '' : ` ${String(s.resource)}`}`);
}
