import { execFile as execFileCallback } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, freePort } from '@ccproxy/test-harness';

const execFile = promisify(execFileCallback);
const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * No Docker engine runs here, so the image is checked by building its file system the way the
 * Dockerfile does: the production-only `npm ci` of stage 2 (its exact command line), the sources
 * stage 3 copies, and then `ccproxy proxy` must start from that tree alone.
 */
describe('the container image layout (Dockerfile)', () => {
  let dir: string;
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  it('runs `ccproxy proxy` with production dependencies and the copied sources only', async () => {
    const dockerfile = await readFile(join(repo, 'Dockerfile'), 'utf8');
    const stages = dockerfile.split(/^FROM /m);
    const deps = stages.find((stage) => stage.includes('AS deps')) ?? '';
    const runtime = stages.at(-1) ?? '';
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-image-'));
    // Stage 2: the package manifests, then its npm ci (line continuations joined).
    for (const path of copiedFromBuild(deps)) await copy(path);
    const install = /^RUN (npm ci[^\n]*(?:\\\n[^\n]*)*)/m.exec(deps.replace(/\\\n\s*/g, ' '))?.[1] ?? '';
    expect(install).toMatch(/--omit=dev/);
    const args = install
      .split(/\s+/)
      .slice(1)
      .filter((arg) => arg !== '');
    await execFile('npm', [...args, '--prefer-offline'], { cwd: dir, maxBuffer: 64 * 1024 * 1024 });
    // Stage 3: the sources it copies from the build stage (the UI bundle is built there; not needed to start the proxy).
    for (const path of copiedFromBuild(runtime)) if (!path.startsWith('admin/dist')) await copy(path);

    const port = await freePort();
    const child = execFile(process.execPath, [join(dir, 'cli/src/main.ts'), 'proxy'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'image'),
        CCPROXY_KEY_HASHER_SECRET: 'image-test-hasher-secret-0123456789',
        CCPROXY_DATA_DIR: join(dir, 'data'),
      },
    });
    try {
      await expect
        .poll(
          () =>
            fetch(`http://127.0.0.1:${port}/readyz`).then(
              (r) => r.status,
              () => 0,
            ),
          { timeout: 30_000, interval: 200 },
        )
        .toBe(200);
    } finally {
      child.child.kill('SIGTERM');
      await child.catch(() => undefined);
    }
  }, 180_000); // a production `npm ci` from the cache: ~20 s alone, over a minute on a loaded machine

  /** Source paths (relative to the build stage's /src) of a stage's `COPY --from=build` lines. */
  function copiedFromBuild(stage: string): string[] {
    return [...stage.matchAll(/^COPY --from=build (.+)$/gm)].flatMap(([, args]) =>
      (args ?? '')
        .trim()
        .split(/\s+/)
        .slice(0, -1)
        .map((source) => source.replace(/^\/src\//, '')),
    );
  }

  async function copy(path: string): Promise<void> {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await cp(join(repo, path), join(dir, path), {
      recursive: true,
      filter: (source) => !source.includes('node_modules'),
    });
  }
});
