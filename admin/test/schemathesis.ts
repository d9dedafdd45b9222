import { execFile as execFileCallback } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { ensurePythonVenv } from '@ccproxy/test-harness';

const execFile = promisify(execFileCallback);

/** Pinned so every machine fuzzes with the same generator; bump deliberately. */
export const SCHEMATHESIS_VERSION = '4.32.5';

/**
 * A Python that runs schemathesis (PyPI) at the pinned version, in a venv in the user cache
 * built on first use (the harness's one venv builder, with its progress lines).
 */
export function schemathesisPython(): Promise<string> {
  return ensurePythonVenv({
    name: `schemathesis-venv-${SCHEMATHESIS_VERSION}`,
    requirements: [`schemathesis==${SCHEMATHESIS_VERSION}`],
    expectedSeconds: 30,
  });
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
