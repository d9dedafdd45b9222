import { execFile as execFileCallback } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { shippedNodeOptions } from '../src/shipped-node-options.ts';

const execFile = promisify(execFileCallback);

/** Allocates short-lived objects until the young generation has grown, then prints its size (MiB). */
const youngGeneration = `
  let keep = [];
  for (let i = 0; i < 4e6; i += 1) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; }
  const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  console.log(space.space_size / 1048576);`;

describe('the Node flags the product ships with', () => {
  it('are the image NODE_OPTIONS, and npm start passes the same ones', async () => {
    const flags = shippedNodeOptions();
    expect(flags).toContainEqual(expect.stringMatching(/^--max-semi-space-size=\d+$/));
    const { scripts } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.start).toBe(`node ${flags.join(' ')} cli/src/main.ts local`);
  });

  it('take effect through NODE_OPTIONS (Node refuses flags it does not allow there)', async () => {
    const run = async (env: Record<string, string>) => Number((await execFile(process.execPath, ['-e', youngGeneration], { env: { PATH: process.env.PATH ?? '', ...env } })).stdout);
    const semiSpaceMiB = Number(/^--max-semi-space-size=(\d+)$/.exec(shippedNodeOptions().find((flag) => flag.startsWith('--max-semi-space-size=')) ?? '')?.[1]);
    const shipped = await run({ NODE_OPTIONS: shippedNodeOptions().join(' ') });
    const defaults = await run({});
    // The young generation is two semi-spaces.
    expect(shipped).toBeGreaterThan(0);
    expect(shipped).toBeLessThanOrEqual(2 * semiSpaceMiB);
    expect(defaults).toBeGreaterThan(2 * semiSpaceMiB);
  });
});
