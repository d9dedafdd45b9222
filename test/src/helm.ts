import { execFile as execFileCallback } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withLock } from './build-lock.ts';
import { longStep } from './progress.ts';
import { exists } from './files.ts';

const execFile = promisify(execFileCallback);

/** The Helm release the chart tests run; bump deliberately (the cache is keyed by it). */
export const HELM_VERSION = 'v3.22.0';
/** The client-go minor Helm v3.22 is built against: release builds stamp it as the default `.Capabilities.KubeVersion`. */
const HELM_K8S_MINOR = '37';

/**
 * A `helm` binary at HELM_VERSION. Helm is not packaged by Debian and nothing may be downloaded
 * but registry packages, so it is built from the Go module proxy (`go install
 * helm.sh/helm/v3/cmd/helm@version`, CGO off, as upstream releases are built) and cached outside
 * the repo, keyed by version, flags and platform, so fresh clones and parallel vitest workers
 * build it once per machine.
 */
export async function ensureHelmBinary(): Promise<string> {
  const ldflags = [
    '-s',
    '-w',
    // The same stamps upstream's Makefile sets, so `helm version` and the default
    // `.Capabilities.KubeVersion` match a release build.
    `-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
    '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1',
    `-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR}`,
  ].join(' ');
  const key = createHash('sha256')
    .update(`${HELM_VERSION}\n${ldflags}\n${process.platform}/${process.arch}`)
    .digest('hex')
    .slice(0, 12);
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const dir = join(cacheRoot, 'ccproxy', `helm-${HELM_VERSION}-${key}`);
  const bin = join(dir, 'helm');
  if (await exists(bin)) return bin;
  await mkdir(dir, { recursive: true });
  return withLock(join(dir, 'build.lock'), 'the build of helm', async () => {
    if (await exists(bin)) return bin; // another process built it while we waited
    // GOBIN is a private folder: `go install` writes in place, and readers must see no binary or a whole one.
    const gobin = await mkdtemp(join(dir, 'gobin-'));
    const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOBIN: gobin };
    env.GOPATH ??= join(homedir(), 'go');
    const label = `building helm ${HELM_VERSION} from the Go module proxy into ${dir} (first run on this machine)`;
    await longStep(label, { expectedSeconds: 300 }, async () => {
      try {
        // Outside any module (cwd = tmpdir), so `pkg@version` resolves helm's own go.mod and go.sum.
        await execFile(
          process.env.GO ?? 'go',
          ['install', '-trimpath', '-ldflags', ldflags, `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`],
          { cwd: tmpdir(), env, maxBuffer: 64 * 1024 * 1024 },
        );
        await chmod(join(gobin, 'helm'), 0o755);
        await rename(join(gobin, 'helm'), bin);
      } catch (error) {
        const { stderr } = error as { stderr?: string };
        throw new Error(`go install of helm ${HELM_VERSION} failed:\n${stderr ?? String(error)}`, { cause: error });
      } finally {
        await rm(gobin, { recursive: true, force: true });
      }
    });
    return bin;
  });
}

export interface HelmResult {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `helm` with a private HOME-like state (config, cache, data under a temp dir), so tests
 * never read or write the user's repositories and plugins. Rejects with helm's stderr.
 */
export async function runHelm(args: readonly string[], options: { cwd?: string } = {}): Promise<HelmResult> {
  const bin = await ensureHelmBinary();
  const state = await mkdtemp(join(tmpdir(), 'ccproxy-helm-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: state,
    HELM_CONFIG_HOME: join(state, 'config'),
    HELM_CACHE_HOME: join(state, 'cache'),
    HELM_DATA_HOME: join(state, 'data'),
  };
  try {
    const { stdout, stderr } = await execFile(bin, [...args], {
      env,
      maxBuffer: 64 * 1024 * 1024,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    return { stdout, stderr };
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed:\n${stderr ?? ''}${stdout ?? ''}`, { cause: error });
  } finally {
    await rm(state, { recursive: true, force: true });
  }
}
