import { execFile as execFileCallback } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { shippedNodeFlags } from '../src/shipped-node-flags.ts';

const execFile = promisify(execFileCallback);

/** Allocates short-lived objects until the young generation has grown, then prints its size (MiB). */
const youngGeneration = `
  let keep = [];
  for (let i = 0; i < 4e6; i += 1) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; }
  const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  console.log(space.space_size / 1048576);`;

describe('the Node flags the product ships with', () => {
  it('are the image ENTRYPOINT flags, and npm start passes the same ones', async () => {
    const flags = shippedNodeFlags();
    expect(flags).toEqual(
      expect.arrayContaining([expect.stringMatching(/^--max-semi-space-size=\d+$/), '--no-memory-reducer']),
    );
    const { scripts } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(scripts.start).toBe(`node ${flags.join(' ')} cli/src/main.ts local`);
  });

  it('are accepted by node (an unknown flag is a start-up error) and take effect', async () => {
    const run = async (flags: string[]) => {
      const { stdout, stderr } = await execFile(process.execPath, [...flags, '-e', youngGeneration], {
        env: { PATH: process.env.PATH ?? '' },
      });
      expect(stderr).toBe('');
      return Number(stdout);
    };
    const flags = shippedNodeFlags();
    const semiSpaceMiB = Number(flags.find((flag) => flag.startsWith('--max-semi-space-size='))?.split('=')[1]);
    const shipped = await run(flags);
    const defaults = await run([]);
    // The young generation is two semi-spaces.
    expect(shipped).toBeGreaterThan(0);
    expect(shipped).toBeLessThanOrEqual(2 * semiSpaceMiB);
    expect(defaults).toBeGreaterThan(2 * semiSpaceMiB);
    await expect(run(['--no-such-v8-flag'])).rejects.toThrow(/bad option/);
  });
});
