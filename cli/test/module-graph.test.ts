import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, startCcproxy } from '@ccproxy/test-harness';

const hook = fileURLToPath(new URL('./loaded-packages-hook.ts', import.meta.url));
/** Code a data-plane process never runs: loading it anyway costs heap, and full GCs grow with the heap. */
const neverOnTheDataPlane = [
  '@kubernetes/client-node',
  '@aws-sdk/client-kms',
  '@aws-sdk/client-secrets-manager',
  '@electric-sql/pglite',
];

/** Which npm packages `ccproxy proxy` and `ccproxy local` (on a Postgres server) load, serving a request. */
describe('what a data-plane process loads', () => {
  let dir: string;
  let databaseUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-graph-'));
    databaseUrl = await createTestDatabase(inject('postgresUrl'), 'graph');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const command of [['proxy'], ['local', '--manifests', 'DIR']]) {
    it(`ccproxy ${command[0]} leaves out the Kubernetes client, the KMS and Secrets Manager SDKs and PGlite`, async () => {
      const env = {
        DATABASE_URL: databaseUrl,
        CCPROXY_KEY_HASHER_SECRET: 'graph-test-hasher-secret-0123456789ab',
        CCPROXY_DATA_DIR: join(dir, `${command[0]}-data`),
        NODE_OPTIONS: `--import=${hook}`,
      };
      const proxy = await startCcproxy(
        command.map((arg) => (arg === 'DIR' ? dir : arg)),
        env,
      );
      try {
        // An unknown key goes through the whole pipeline's front half (auth, error model, metrics).
        expect(
          (await fetch(`${proxy.url}/ak/ak_unknown_0123456789/v1/messages`, { method: 'POST', body: '{}' })).status,
        ).toBe(404);
        const loaded = proxy.output
          .filter((line) => line.startsWith('loaded-package '))
          .map((line) => line.slice('loaded-package '.length));
        // The hook saw the packages the proxy does run, so an absence below means something.
        expect(loaded).toEqual(expect.arrayContaining(['fastify', 'undici', 'pg', 'pino', 'prom-client']));
        for (const name of neverOnTheDataPlane) expect(loaded, name).not.toContain(name);
      } finally {
        await proxy.stop();
      }
    });
  }
});
