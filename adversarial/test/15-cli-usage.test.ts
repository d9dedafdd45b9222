import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { secretSources } from '@ccproxy/core';
import { commandFields } from '../../cli/src/command-fields.ts';

const mainScript = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

/** The real `ccproxy` entry point as a child process on the pinned Node. */
async function ccproxy(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [mainScript, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr };
}

/** Item 15: bad command lines get one line of error, the usage and exit 2 — never a stack trace. */
describe('item 15: the CLI on bad input, --version and per-command --help', () => {
  it.each([
    [['--bogus'], "ccproxy: Unknown option '--bogus'"],
    [['bogus'], 'ccproxy: unknown command "bogus"'],
    [['proxy', '--bogus'], "ccproxy: Unknown option '--bogus'"],
    [['proxy', 'extra'], 'ccproxy: unexpected argument "extra"'],
    [['local', '--manifests'], "ccproxy: Option '--manifests <value>' argument missing"],
    [['operator', '--manifests', 'x'], 'ccproxy: --manifests is an option of `ccproxy local` only'],
    [['-x'], "ccproxy: Unknown option '-x'"],
  ])('ccproxy %j → one-line error, usage, exit 2', async (args, firstLine) => {
    const { code, stdout, stderr } = await ccproxy(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.split('\n');
    expect(lines[0]).toBe(firstLine);
    expect(lines[1]).toBe('usage: ccproxy <command> [options]');
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toContain('Error');
  });

  it('--version prints the version from package.json', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../cli/package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const { code, stdout } = await ccproxy([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`ccproxy ${version}\n`);
    }
  });

  it('no arguments or --help prints the usage, exit 0', async () => {
    for (const args of [[], ['--help'], ['-h']]) {
      const { code, stdout } = await ccproxy(args);
      expect(code).toBe(0);
      expect(stdout).toContain('usage: ccproxy <command> [options]');
      for (const command of Object.keys(commandFields)) expect(stdout).toContain(`  ${command} `);
    }
  });

  it.each(Object.keys(commandFields) as (keyof typeof commandFields)[])(
    'ccproxy %s --help lists exactly the variables its config schemas read',
    async (command) => {
      const { code, stdout } = await ccproxy([command, '--help']);
      expect(code).toBe(0);
      const listed = [...stdout.matchAll(/^ {2}([A-Z][A-Z0-9_]+)$/gm)].map((match) => match[1]);
      const read = Object.values(commandFields[command]).map((field) => field.env);
      const secretIds = Object.entries(secretSources)
        .filter(([, source]) => read.includes(source.variable))
        .map(([id]) => id);
      expect(listed.sort()).toEqual([...read, ...secretIds].sort());
      // The variables a command is known to need are among them.
      const needed = {
        local: 'CCPROXY_MANIFESTS_DIR',
        proxy: 'DATABASE_URL',
        operator: 'CCPROXY_KMS_KEY_ID',
        admin: 'CCPROXY_ADMIN_PASSWORD_HASH',
      };
      expect(listed).toContain(needed[command]);
      if (command === 'proxy') expect(listed).toContain('CCPROXY_REQUEST_BODY_IDLE_TIMEOUT_MS');
    },
  );
});
