import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync, rmSync } from 'node:fs';
import { appendFile, chmod, chown, mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, parse } from 'node:path';
import pg from 'pg';
import { freePort } from './ccproxy-process.ts';

export interface PostgresClusterOptions {
  /** Database named in `url` (default `postgres`). */
  readonly database?: string;
  /** Extra server settings appended to `postgresql.conf` (they override the defaults here). */
  readonly settings?: Readonly<Record<string, string | number>>;
}

export interface PostgresCluster {
  /** Superuser URL: `postgres://postgres@127.0.0.1:PORT/DATABASE` (trust auth, no password). */
  readonly url: string;
  readonly port: number;
  /** The cluster's data directory (also holds the server's unix socket). */
  readonly dataDir: string;
  /** Fast shutdown, then removes the cluster's files. Idempotent. */
  stop(): Promise<void>;
  /** Fast shutdown keeping the data (to test outages). */
  pause(): Promise<void>;
  /** Starts it again on the same port, with the same data. */
  resume(): Promise<void>;
  /** Creates a database on this cluster and returns its URL. */
  createDatabase(name: string): Promise<string>;
}

/**
 * A real, throwaway PostgreSQL cluster: `initdb` into a fresh temp dir, then `pg_ctl start -w`
 * on a free loopback port, durability off. Server binaries come from PATH or
 * `/usr/lib/postgresql/<highest>/bin`; as root, Debian's `postgresql` is installed when neither
 * has them. As root the server runs as the `postgres` OS user (created when missing), since
 * PostgreSQL refuses to run as root.
 */
export async function startPostgresCluster(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const bin = await serverBinaries();
  const owner = isRoot() ? await postgresUser() : undefined;
  const dir = await mkdtemp(join(await baseDir(owner !== undefined), 'ccproxy-pg-'));
  await chmod(dir, 0o755);
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const tool = (name: string, args: readonly string[]) => run(join(bin, name), args, { cwd: dir, owner });
  const live: LiveCluster = { dir, dataDir };
  liveClusters.add(live);
  try {
    await tool('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
    const start = () => tool('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
    // The port is free when we pick it but another process may take it first: pick again then.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      await configure(dataDir, port, options.settings ?? {});
      try {
        await start();
        break;
      } catch (error) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        if (attempt >= 5 || !/could not bind|address already in use/i.test(log)) throw withLog(error, log);
      }
    }
    const halt = () => tool('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    let stopped = false;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(options.database ?? 'postgres')}`,
      port,
      dataDir,
      async pause() {
        await halt();
      },
      async resume() {
        await start().catch(async (error: unknown) => {
          throw withLog(error, await readFile(logFile, 'utf8').catch(() => ''));
        });
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        if (await stat(join(dataDir, 'postmaster.pid')).then(() => true, () => false)) await halt().catch(() => undefined);
        liveClusters.delete(live);
        await rm(dir, { recursive: true, force: true });
      },
      createDatabase: (name) => createDatabaseAt(adminUrl, name),
    };
  } catch (error) {
    // Leave nothing running or on disk when the cluster never came up.
    await tool('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    liveClusters.delete(live);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Creates database `name` (any name; it is quoted) through the superuser URL; returns its URL. */
export async function createDatabaseAt(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

async function configure(dataDir: string, port: number, extra: Readonly<Record<string, string | number>>): Promise<void> {
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    // The socket lives with the data, not in /var/run/postgresql (absent or not ours).
    unix_socket_directories: dataDir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 200,
    ...extra,
  };
  // Later lines win, so appending again on a port retry is fine. Appending keeps the file's owner.
  const lines = Object.entries(settings).map(([key, value]) =>
    typeof value === 'number' ? `${key} = ${value}` : `${key} = '${value.replaceAll("'", "''")}'`);
  await appendFile(join(dataDir, 'postgresql.conf'), `\n# ccproxy test cluster\n${lines.join('\n')}\n`);
}

// ---- binaries -------------------------------------------------------------------------------

let binaries: Promise<string> | undefined;

/** The directory holding `initdb`, `pg_ctl` and `postgres` (installed once per process if needed). */
function serverBinaries(): Promise<string> {
  binaries ??= findOrInstall();
  binaries.catch(() => (binaries = undefined));
  return binaries;
}

async function findOrInstall(): Promise<string> {
  const found = await locateServerBinaries();
  if (found !== undefined) return found;
  if (!isRoot()) {
    throw new Error('PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql) or run as root to have the tests install them');
  }
  const apt = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  try {
    await run('apt-get', ['update'], apt);
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], apt);
  } catch (error) {
    throw new Error(`PostgreSQL server binaries not found, and installing Debian's postgresql failed: ${(error as Error).message}`, { cause: error });
  }
  const installed = await locateServerBinaries();
  if (installed === undefined) throw new Error('installed postgresql with apt-get, but still found no initdb/pg_ctl/postgres');
  return installed;
}

const serverTools = ['initdb', 'pg_ctl', 'postgres'];

export async function locateServerBinaries(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (!(await isExecutable(join(dir, 'initdb')))) continue;
    // Debian links initdb into PATH from /usr/lib/postgresql/N/bin; use the real directory so the
    // three tools are the same version.
    const real = dirname(await realpath(join(dir, 'initdb')));
    for (const candidate of [real, dir]) if (await hasAll(candidate)) return candidate;
  }
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+(\.\d+)*$/.test(v));
  versions.sort((a, b) => compareVersions(b, a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (await hasAll(bin)) return bin;
  }
  return undefined;
}

async function hasAll(dir: string): Promise<boolean> {
  for (const name of serverTools) if (!(await isExecutable(join(dir, name)))) return false;
  return true;
}

async function isExecutable(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile() && (s.mode & 0o111) !== 0, () => false);
}

function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

// ---- running as the postgres OS user ------------------------------------------------------------

interface Owner {
  readonly uid: number;
  readonly gid: number;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The `postgres` OS user (created as a system user when missing). */
async function postgresUser(): Promise<Owner> {
  const lookup = async (): Promise<Owner> => ({
    uid: Number((await run('id', ['-u', 'postgres'])).trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).trim()),
  });
  try {
    return await lookup();
  } catch {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'])
      .catch(() => run('adduser', ['-S', '-D', '-H', 'postgres']));
    return lookup();
  }
}

/**
 * Where to make the cluster's dir: the OS temp dir, unless we hand the dir to the postgres user
 * and that user cannot reach it (TMPDIR under /root, say); then /tmp.
 */
async function baseDir(forOtherUser: boolean): Promise<string> {
  const base = tmpdir();
  if (!forOtherUser) return base;
  for (let path = base; ; path = dirname(path)) {
    const mode = await stat(path).then((s) => s.mode, () => 0);
    if ((mode & 0o001) === 0) return '/tmp';
    if (path === parse(path).root) return base;
  }
}

// ---- processes ------------------------------------------------------------------------------

interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Runs the command as this user (we are root). */
  readonly owner?: Owner | undefined;
}

/** Runs a command to completion; rejects with its output on failure. Stdin is /dev/null. */
function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.owner === undefined ? {} : { uid: options.owner.uid, gid: options.owner.gid }),
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
    child.on('error', (error) => reject(new Error(`${command}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${[command, ...args].join(' ')} exited with ${code ?? signal}:\n${output.trim()}`));
    });
  });
}

function withLog(error: unknown, log: string): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${message}\n--- server log (tail) ---\n${log.trim().split('\n').slice(-30).join('\n')}`, { cause: error });
}

// ---- cleanup if the process exits without stop() --------------------------------------------

interface LiveCluster {
  readonly dir: string;
  readonly dataDir: string;
}

const liveClusters = new Set<LiveCluster>();

process.on('exit', () => {
  for (const { dir, dataDir } of liveClusters) {
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) {
        process.kill(pid, 'SIGQUIT'); // immediate shutdown
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline && alive(pid)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    } catch {
      // not running
    }
    try {
      accessSync(dir, fsConstants.W_OK);
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
