import { execFile as execFileCallback } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createLogger, migrate, PgDatabase, type Database } from '@ccproxy/core';
import { freePort } from './ccproxy-process.ts';
import { aptInstall } from './apt-install.ts';

const execFile = promisify(execFileCallback);

export interface ThrowawayPostgres {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  /** Stops the server keeping its data (to test outages). */
  pause(): Promise<void>;
  /** Starts it again on the same port. */
  resume(): Promise<void>;
  /** The postmaster's pid (its backends are its children): lets a benchmark pin the server to a core. */
  serverPid(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL cluster for the test run: `initdb` into a temp dir and `pg_ctl start` on a
 * free loopback port, with durability off (it is thrown away). Installs Debian's `postgresql`
 * when no server binaries are found and we are root. Runs as the `postgres` OS user when we are
 * root, since the server refuses to run as root.
 */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bin = await findServerBinaries();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-pg-'));
  await chmod(dir, 0o755);
  const dataDir = join(dir, 'data');
  if (asRoot) {
    const { stdout } = await execFile('id', ['-u', 'postgres']).catch(async () => {
      await execFile('useradd', ['--system', '--no-create-home', 'postgres']);
      return execFile('id', ['-u', 'postgres']);
    });
    const { stdout: gid } = await execFile('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const run = (tool: string, args: string[]) =>
    asRoot ? execFile('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : execFile(join(bin, tool), args);
  await run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync']);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
    '-c shared_buffers=64MB',
  ].join(' ');
  const start = () =>
    run('pg_ctl', ['-D', dataDir, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const halt = () => run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    pause: async () => void (await halt()),
    resume: async () => void (await start()),
    serverPid: async () => Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n', 1)[0]),
    async stop() {
      await halt().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on the cluster, so each test file starts empty. Returns its URL. */
export async function createTestDatabase(adminUrl: string, prefix = 'test'): Promise<string> {
  const name = `${prefix}_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`.replace(/[^a-z0-9_]/g, '_');
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A migrated database through the product's own `PgDatabase`: a fresh one on the cluster at
 * `adminUrl` (each test file its own), or the one at `url` as given.
 */
export async function openMigratedDatabase(
  target: { adminUrl: string; prefix?: string } | { url: string },
  options: { reconnectDelayMs?: number } = {},
): Promise<Database> {
  const logger = createLogger({ level: 'silent' });
  const url = 'url' in target ? target.url : await createTestDatabase(target.adminUrl, target.prefix);
  const db = new PgDatabase({ url, logger, ...options });
  await migrate(db, logger);
  return db;
}

async function findServerBinaries(): Promise<string> {
  const found = await locate();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0)
    throw new Error('PostgreSQL server binaries not found; install the `postgresql` package');
  await aptInstall(['postgresql']);
  const installed = await locate();
  if (installed === undefined) throw new Error('installed postgresql but found no initdb');
  return installed;
}

async function locate(): Promise<string | undefined> {
  const root = '/usr/lib/postgresql';
  const versions = await readdir(root).catch(() => [] as string[]);
  const sorted = versions.filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const version of sorted) {
    const bin = join(root, version, 'bin');
    if (
      await stat(join(bin, 'initdb')).then(
        () => true,
        () => false,
      )
    )
      return bin;
  }
  return undefined;
}
