import { execFile as execFileCallback } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withLock } from './build-lock.ts';
import { longStep } from './progress.ts';
import { exists } from './files.ts';

const execFile = promisify(execFileCallback);

/** The kube-score release the chart is scored with; bump deliberately (the cache is keyed by it). */
export const KUBE_SCORE_VERSION = 'v1.20.0';

/**
 * A `kube-score` binary at KUBE_SCORE_VERSION, built from the Go module proxy (`go install
 * github.com/zegl/kube-score/cmd/kube-score@version`, CGO off) and cached outside the repo like
 * helm (test/src/helm.ts): about 4 minutes on 2 cores the first time on a machine.
 */
export async function ensureKubeScoreBinary(): Promise<string> {
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const dir = join(cacheRoot, 'ccproxy', `kube-score-${KUBE_SCORE_VERSION}-${process.platform}-${process.arch}`);
  const bin = join(dir, 'kube-score');
  if (await exists(bin)) return bin;
  await mkdir(dir, { recursive: true });
  return withLock(join(dir, 'build.lock'), 'the build of kube-score', async () => {
    if (await exists(bin)) return bin;
    const gobin = await mkdtemp(join(dir, 'gobin-'));
    const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOBIN: gobin };
    env.GOPATH ??= join(homedir(), 'go');
    const label = `building kube-score ${KUBE_SCORE_VERSION} from the Go module proxy into ${dir} (first run on this machine)`;
    await longStep(label, { expectedSeconds: 260 }, async () => {
      try {
        await execFile(
          process.env.GO ?? 'go',
          ['install', '-trimpath', `github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}`],
          { cwd: tmpdir(), env, maxBuffer: 64 * 1024 * 1024 },
        );
        await chmod(join(gobin, 'kube-score'), 0o755);
        await rename(join(gobin, 'kube-score'), bin);
      } catch (error) {
        const { stderr } = error as { stderr?: string };
        throw new Error(`go install of kube-score ${KUBE_SCORE_VERSION} failed:\n${stderr ?? String(error)}`, {
          cause: error,
        });
      } finally {
        await rm(gobin, { recursive: true, force: true });
      }
    });
    return bin;
  });
}

/** `kube-score score` over manifests (YAML files); its findings as `LEVEL object: message` lines. */
export async function kubeScore(
  files: readonly string[],
  ignored: readonly string[] = [],
  flags: readonly string[] = [],
): Promise<string[]> {
  const bin = await ensureKubeScoreBinary();
  const args = [
    'score',
    '--output-format',
    'ci',
    ...flags,
    ...ignored.flatMap((test) => ['--ignore-test', test]),
    ...files,
  ];
  const stdout = await execFile(bin, args, { maxBuffer: 64 * 1024 * 1024 }).then(
    (r) => r.stdout,
    // Exit code 1 means "found critical findings": they are on stdout.
    (error: { stdout?: string; code?: number }) => {
      if (error.code === 1 && error.stdout !== undefined) return error.stdout;
      throw error;
    },
  );
  return stdout.split('\n').filter((line) => /^\[(CRITICAL|WARNING)\]/.test(line));
}
