import { execFile as execFileCallback } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { longStep } from '@ccproxy/test-harness';
import { exists } from '@ccproxy/test-harness';

const execFile = promisify(execFileCallback);
const moduleDir = fileURLToPath(new URL('./prometheus-crds/', import.meta.url));
const wanted = ['monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml'];

/**
 * The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs with their full upstream
 * schemas, generated the way upstream generates them: controller-gen run over its Go API types
 * (both pinned in ./prometheus-crds/go.mod, fetched from the Go module proxy). Cached outside
 * the repo by the module's hash; a folder appears only by an atomic rename once complete, so
 * parallel workers may both generate and the loser's copy is discarded.
 */
export async function prometheusOperatorCrds(): Promise<string[]> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'tools.go']) hash.update(await readFile(join(moduleDir, file)));
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ccproxy');
  const dir = join(cache, `prometheus-crds-${hash.digest('hex').slice(0, 12)}`);
  const files = wanted.map((file) => join(dir, file));
  if (await exists(files[0] ?? '')) return files;
  await mkdir(cache, { recursive: true });
  const building = await mkdtemp(`${dir}.building-`);
  const label = `building controller-gen and the prometheus-operator CRDs into ${dir} (first run on this machine)`;
  await longStep(label, { expectedSeconds: 90 }, async () => {
    try {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        CGO_ENABLED: '0',
        GOTOOLCHAIN: 'local',
        GOFLAGS: [process.env.GOFLAGS, '-mod=readonly'].filter(Boolean).join(' '),
      };
      const bin = join(building, 'controller-gen');
      const run = (command: string, args: string[]) =>
        execFile(command, args, { cwd: moduleDir, env, maxBuffer: 64 * 1024 * 1024 }).catch((error: unknown) => {
          throw new Error(
            `${command} ${args.join(' ')} failed:\n${(error as { stderr?: string }).stderr ?? String(error)}`,
            { cause: error },
          );
        });
      await run(process.env.GO ?? 'go', [
        'build',
        '-trimpath',
        '-o',
        bin,
        'sigs.k8s.io/controller-tools/cmd/controller-gen',
      ]);
      await run(bin, [
        'crd:crdVersions=v1',
        'paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1',
        `output:crd:dir=${join(building, 'out')}`,
      ]);
      await mkdir(join(building, 'crds'));
      for (const file of wanted) await rename(join(building, 'out', file), join(building, 'crds', file));
      await rename(join(building, 'crds'), dir).catch(async (error: unknown) => {
        if (!(await exists(files[0] ?? ''))) throw error;
      });
    } finally {
      await rm(building, { recursive: true, force: true });
    }
  });
  return files;
}
