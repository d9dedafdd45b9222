import { execFile as execFileCallback, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './ccproxy-process.ts';
import { withLock } from './build-lock.ts';
import { longStep } from './progress.ts';
import { aptInstall } from './apt-install.ts';
import { exists } from './files.ts';
import { spawnDaemon, type Daemon } from './daemon.ts';
import { startKubeControllerManager } from './kube-controller-manager.ts';

const execFile = promisify(execFileCallback);

/** The k8s.io/kubernetes version test/kube-apiserver/go.mod pins (also stamped into `/version`). */
export const KUBERNETES_VERSION = 'v1.34.4';

/** A static bearer-token identity (a row of `--token-auth-file`). */
export interface StaticTokenUser {
  readonly token: string;
  readonly user: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
}

export interface KubeApiserverOptions {
  /** More token users beside the admin, e.g. an operator's service identity to test its RBAC. */
  readonly extraUsers?: readonly StaticTokenUser[];
  readonly readyTimeoutMs?: number;
  /**
   * Run kube-controller-manager beside it (garbage collector and namespace controller), so
   * ownerReferences and namespace deletion behave as in a cluster. True by default.
   */
  readonly controllerManager?: boolean;
  /**
   * CRD manifests (one YAML document per file) applied before the controller-manager starts:
   * its garbage collector rediscovers kinds only every 30 s, so kinds installed later would go
   * uncollected for up to that long.
   */
  readonly crdFiles?: readonly string[];
}

export interface ThrowawayKubeApiserver {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** Bearer token of `admin` (group `system:masters`). */
  readonly token: string;
  /** The apiserver's self-signed serving cert chain (its CA is in it); trust it instead of skipping TLS checks. */
  readonly caPem: string;
  readonly kubeconfigPath: string;
  readonly kubeconfigYaml: string;
  /** A kubeconfig for any token in the token file (admin or one of `extraUsers`). */
  kubeconfigFor(token: string): string;
  /** Kills the apiserver only (SIGKILL); etcd keeps the data (to test API outages). */
  pause(): Promise<void>;
  /** Starts the apiserver again on the same port and waits until it is ready. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real kube-apiserver on a real etcd, as controller-runtime's envtest runs them: etcd from
 * Debian (`etcd-server`, installed when missing and we are root), kube-apiserver built from the Go
 * module proxy by test/kube-apiserver and cached outside the repo. Static-token auth, RBAC, and
 * (unless turned off) kube-controller-manager from the same module running the garbage collector
 * and the namespace controller.
 */
export async function startThrowawayKubeApiserver(options: KubeApiserverOptions = {}): Promise<ThrowawayKubeApiserver> {
  const withControllers = options.controllerManager ?? true;
  // The two Kubernetes builds run one after the other: they share most packages, which the
  // second takes from Go's build cache.
  const kubeBinaries = async () => {
    const apiserver = await ensureKubeApiserverBinary();
    return { apiserver, controllerManager: withControllers ? await ensureKubeControllerManager() : undefined };
  };
  const [etcdBin, { apiserver: apiserverBin, controllerManager: controllerManagerBin }] = await Promise.all([
    ensureEtcd(),
    kubeBinaries(),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-kube-'));
  const children = new Set<ChildProcess>();
  // A crashed test run must not leave etcd/apiserver behind holding ports.
  const killAll = () =>
    [...children].map((child) => {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      return exited;
    });
  process.once('exit', killAll);
  try {
    const token = randomBytes(24).toString('base64url');
    const users: StaticTokenUser[] = [
      { token, user: 'admin', uid: 'admin', groups: ['system:masters'] },
      ...(options.extraUsers ?? []),
    ];
    await writeFile(join(dir, 'tokens.csv'), users.map(tokenRow).join('\n') + '\n', { mode: 0o600 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

    const etcd = await startEtcd(etcdBin, dir, children);
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const args = [
      `--etcd-servers=${etcd.url}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${url}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      // The endpoint reconciler would log every few seconds that 127.0.0.1 may not be a Service endpoint.
      '--endpoint-reconciler-type=none',
    ];
    const timeoutMs = options.readyTimeoutMs ?? 120_000;
    let apiserver: Daemon | undefined;
    let caPem = '';
    const start = async () => {
      if (apiserver !== undefined) return;
      const daemon = spawnDaemon(apiserverBin, args, children);
      // The cert stays in cert-dir, so a resumed apiserver serves the same one.
      caPem = await waitForApiserver(url, token, join(dir, 'certs', 'apiserver.crt'), daemon, timeoutMs);
      apiserver = daemon;
    };
    const halt = async (signal: NodeJS.Signals = 'SIGTERM') => {
      await apiserver?.terminate(signal);
      apiserver = undefined;
    };
    await start();

    const kubeconfigFor = (userToken: string) => kubeconfig(url, caPem, userToken);
    const kubeconfigYaml = kubeconfigFor(token);
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml, { mode: 0o600 });
    for (const file of options.crdFiles ?? []) await installCrd(url, token, caPem, await readFile(file, 'utf8'));
    const controllerManager =
      controllerManagerBin === undefined
        ? undefined
        : await startKubeControllerManager(controllerManagerBin, kubeconfigPath, children, timeoutMs);
    return {
      url,
      token,
      caPem,
      kubeconfigPath,
      kubeconfigYaml,
      kubeconfigFor,
      // A crash, not a shutdown: open watches are cut, nothing is drained.
      pause: () => halt('SIGKILL'),
      resume: start,
      async stop() {
        await controllerManager?.terminate();
        await halt();
        await etcd.daemon.terminate();
        process.removeListener('exit', killAll);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(killAll());
    process.removeListener('exit', killAll);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function tokenRow({ token, user, uid, groups }: StaticTokenUser): string {
  for (const field of [token, user, uid ?? '', ...(groups ?? [])]) {
    if (/[",\n]/.test(field)) throw new Error(`token file fields may not contain commas, quotes or newlines: ${field}`);
  }
  return [token, user, uid ?? user, `"${(groups ?? []).join(',')}"`].join(',');
}

function kubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: test',
    'preferences: {}',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: test',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    '    user: test',
    '',
  ].join('\n');
}

// --- processes ---

async function startEtcd(
  bin: string,
  dir: string,
  children: Set<ChildProcess>,
): Promise<{ url: string; daemon: Daemon }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=default',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${url}`,
    `--advertise-client-urls=${url}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
  ];
  const { stdout } = await execFile(bin, ['--help']);
  // 3.5+ has it (envtest passes it); Debian bookworm's 3.4.23 does not.
  if (stdout.includes('--unsafe-no-fsync')) args.push('--unsafe-no-fsync=true');
  // etcd < 3.4.31/3.5.13 lacks RequestWatchProgress, so kube-apiserver's watch cache of a resource
  // nobody writes stays at an old revision and a watch from a newer one (an informer's list RV)
  // waits 3 s, then fails with 504 "Too large resource version". Frequent progress notifications
  // keep every cache current instead.
  const progress =
    stdout.includes('--watch-progress-notify-interval') &&
    !stdout.includes('--experimental-watch-progress-notify-interval')
      ? '--watch-progress-notify-interval'
      : '--experimental-watch-progress-notify-interval';
  args.push(`${progress}=250ms`);
  // etcd reads ETCD_* from the environment; Debian's 3.4 also refuses arm64 without this opt-in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD_')));
  if (process.arch === 'arm64') env.ETCD_UNSUPPORTED_ARCH = 'arm64';
  const daemon = spawnDaemon(bin, args, children, env);
  const deadline = Date.now() + 30_000;
  let exited = false;
  void daemon.exited.then(() => {
    exited = true;
  });
  while (!exited && Date.now() < deadline) {
    const healthy = await fetch(`${url}/health`).then(
      async (r) => r.ok && (await r.text()).includes('true'),
      () => false,
    );
    if (healthy) return { url, daemon };
    await sleep(200);
  }
  await daemon.terminate();
  throw new Error(`etcd did not become healthy:\n${daemon.tail()}`);
}

/** Polls `/readyz` with the token until 200; returns the serving cert chain the check trusted. */
async function waitForApiserver(
  url: string,
  token: string,
  certPath: string,
  daemon: Daemon,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  let exited = false;
  void daemon.exited.then(() => {
    exited = true;
  });
  while (!exited && Date.now() < deadline) {
    const caPem = await readFile(certPath, 'utf8').catch(() => undefined);
    if (caPem !== undefined) {
      const answer = await getText(`${url}/readyz`, token, caPem).catch((error: Error) => ({
        status: 0,
        body: error.message,
      }));
      if (answer.status === 200) return caPem;
      last = `${answer.status} ${answer.body.slice(-500)}`;
    }
    await sleep(250);
  }
  const what = exited ? 'exited' : `was not ready within ${timeoutMs} ms`;
  await daemon.terminate();
  throw new Error(`kube-apiserver ${what} (last /readyz: ${last}):\n${daemon.tail()}`);
}

/**
 * Server-side applies one CRD manifest (YAML as written) and waits until it is Established, so
 * the API server's discovery lists its kind.
 */
async function installCrd(url: string, token: string, caPem: string, yaml: string): Promise<void> {
  const name = /^metadata:\s*\n\s+name:\s*(\S+)/m.exec(yaml)?.[1];
  if (name === undefined) throw new Error(`no metadata.name in CRD manifest:\n${yaml.slice(0, 200)}`);
  const path = `${url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
  const applied = await getText(`${path}?fieldManager=ccproxy-test-setup&force=true`, token, caPem, {
    method: 'PATCH',
    body: yaml,
    contentType: 'application/apply-patch+yaml',
  });
  if (applied.status >= 300) throw new Error(`applying CRD ${name}: ${applied.status} ${applied.body.slice(0, 500)}`);
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(100)) {
    const { body } = await getText(path, token, caPem);
    const conditions = (JSON.parse(body) as { status?: { conditions?: Array<{ type: string; status: string }> } })
      .status?.conditions;
    if (conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
  }
  throw new Error(`CRD ${name} was not Established within 30 s`);
}

function getText(
  url: string,
  token: string,
  ca: string,
  send: { method: string; body: string; contentType: string } = { method: 'GET', body: '', contentType: '' },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (send.contentType !== '') headers['content-type'] = send.contentType;
    const req = request(url, { method: send.method, headers, ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(send.body);
  });
}

// --- binaries ---

async function ensureEtcd(): Promise<string> {
  const bin = process.env.ETCD_BIN ?? '/usr/bin/etcd';
  if (await exists(bin)) return bin;
  if (process.getuid?.() !== 0)
    throw new Error(`etcd not found at ${bin}; install the \`etcd-server\` package or set ETCD_BIN`);
  // The package's systemd unit is irrelevant (no systemd here, policy-rc.d keeps it from starting); we run the binary.
  await aptInstall(['etcd-server']);
  if (!(await exists(bin))) throw new Error(`installed etcd-server but found no ${bin}`);
  return bin;
}

const moduleDir = fileURLToPath(new URL('../kube-apiserver/', import.meta.url));

/**
 * The cached kube-apiserver binary, built with `go build` when missing (about 10 minutes on 2
 * cores with a cold Go cache). The cache key hashes the wrapper module, so bumping the version
 * builds anew; the cache lives outside the repo so every checkout on the machine shares it.
 */
export function ensureKubeApiserverBinary(): Promise<string> {
  return ensureKubeBinary('kube-apiserver', '.');
}

/** kube-controller-manager at the API server's version, built from the same module and cached beside it. */
export function ensureKubeControllerManager(): Promise<string> {
  return ensureKubeBinary('kube-controller-manager', './kube-controller-manager');
}

/** kubectl at the API server's version (no version skew), built from the same module and cached beside it. */
export function ensureKubectl(): Promise<string> {
  return ensureKubeBinary('kubectl', './kubectl');
}

/**
 * Measured on 2 cores with a cold Go cache; kube-controller-manager is built after
 * kube-apiserver and takes most of its packages from the build cache.
 */
const expectedBuildSeconds: Record<string, number> = {
  'kube-apiserver': 600,
  'kube-controller-manager': 180,
  kubectl: 120,
};

async function ensureKubeBinary(tool: string, pkg: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go', 'kubectl/main.go', 'kube-controller-manager/main.go'])
    hash.update(await readFile(join(moduleDir, file)));
  hash.update(`${process.platform}/${process.arch}`);
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const dir = join(cacheRoot, 'ccproxy', `kube-apiserver-${KUBERNETES_VERSION}-${hash.digest('hex').slice(0, 12)}`);
  const bin = join(dir, tool);
  if (await exists(bin)) return bin;
  await mkdir(dir, { recursive: true });
  return withLock(join(dir, `${tool}.build.lock`), `the build of ${tool}`, async () => {
    if (await exists(bin)) return bin; // another process built it while we waited
    const partial = `${bin}.${process.pid}.partial`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CGO_ENABLED: '0',
      GOTOOLCHAIN: 'local',
      GOFLAGS: [process.env.GOFLAGS, '-mod=readonly'].filter(Boolean).join(' '),
    };
    env.GOPATH ??= join(homedir(), 'go');
    env.GOMODCACHE ??= join(env.GOPATH.split(':')[0] ?? env.GOPATH, 'pkg', 'mod');
    const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`;
    const label = `building ${tool} ${KUBERNETES_VERSION} from the Go module proxy into ${dir} (first run on this machine)`;
    await longStep(label, { expectedSeconds: expectedBuildSeconds[tool] ?? 600 }, async () => {
      try {
        await execFile(process.env.GO ?? 'go', ['build', '-trimpath', '-ldflags', ldflags, '-o', partial, pkg], {
          cwd: moduleDir,
          env,
          maxBuffer: 64 * 1024 * 1024,
        });
      } catch (error) {
        await rm(partial, { force: true });
        const { stderr } = error as { stderr?: string };
        throw new Error(`go build of ${tool} failed:\n${stderr ?? String(error)}`, { cause: error });
      }
      await chmod(partial, 0o755);
      await rename(partial, bin); // atomic: readers see no binary or a whole one
    });
    return bin;
  });
}
