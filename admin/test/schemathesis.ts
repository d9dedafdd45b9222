import { execFile as execFileCallback } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCallback);

/** Pinned so every machine fuzzes with the same generator; bump deliberately. */
export const SCHEMATHESIS_VERSION = '4.32.5';

/**
 * A Python that runs schemathesis (PyPI) at the pinned version: a venv in the user cache, built
 * on first use (about 20 s) beside its final place and renamed in, so a killed install never
 * leaves a half venv that later runs trust (as test/src/moto-server.ts does for moto).
 */
export async function schemathesisPython(): Promise<string> {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const venv = join(cache, 'ccproxy', `schemathesis-venv-${SCHEMATHESIS_VERSION}`);
  const python = join(venv, 'bin', 'python');
  if (
    await stat(python).then(
      () => true,
      () => false,
    )
  )
    return python;
  const building = `${venv}.building-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  await mkdir(join(cache, 'ccproxy'), { recursive: true });
  try {
    await execFile('python3', ['-m', 'venv', building]);
    await execFile(
      join(building, 'bin', 'python'),
      [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--no-input',
        `schemathesis==${SCHEMATHESIS_VERSION}`,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await rename(building, venv).catch(async (error: unknown) => {
      if (
        !(await stat(python).then(
          () => true,
          () => false,
        ))
      )
        throw error;
    });
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  return python;
}

/**
 * `schemathesis run` against a live OpenAPI document (with a `schemathesis.toml` when given);
 * resolves with the exit code and output.
 * `python -m schemathesis.cli`, not the console script, whose shebang holds the build path.
 */
export async function runSchemathesis(
  python: string,
  args: string[],
  timeoutMs: number,
  configFile?: string,
): Promise<{ code: number; output: string }> {
  const config = configFile === undefined ? [] : ['--config-file', configFile];
  try {
    const { stdout, stderr } = await execFile(python, ['-m', 'schemathesis.cli', ...config, 'run', ...args], {
      // Its example database (.schemathesis/) goes to the working directory: not the repo.
      cwd: tmpdir(),
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NO_COLOR: '1',
        SCHEMATHESIS_TELEMETRY: 'false',
      },
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      output: `${failed.stdout ?? ''}${failed.stderr ?? ''}`,
    };
  }
}
