import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseResource, secretData, type Secret } from '../resources.ts';
import type { SecretStore } from '../reconcile/secret-store.ts';

/**
 * Local mode's Secrets: those in the manifests folder (bring-your-own keys) take precedence;
 * generated ones are written as `v1/Secret` YAML under `<dataDir>/secrets/<namespace>/<name>.yaml`,
 * mode 0600, in the same shape `kubectl apply` accepts.
 */
export class LocalSecretStore implements SecretStore {
  readonly #dir: string;
  #folder = new Map<string, Secret>();

  constructor(dataDir: string) {
    this.#dir = join(dataDir, 'secrets');
  }

  /** Secrets currently in the manifests folder. */
  useFolderSecrets(secrets: readonly Secret[]): void {
    this.#folder = new Map(
      secrets.map((secret) => [`${secret.metadata.namespace ?? 'default'}/${secret.metadata.name}`, secret]),
    );
  }

  pathOf(namespace: string, name: string): string {
    return join(this.#dir, namespace, `${name}.yaml`);
  }

  async read(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    const fromFolder = this.#folder.get(`${namespace}/${name}`);
    if (fromFolder !== undefined) return secretData(fromFolder);
    let text: string;
    try {
      text = await readFile(this.pathOf(namespace, name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = parseResource(parse(text));
    if ('problems' in parsed || parsed.resource.kind !== 'Secret')
      throw new Error(`generated Secret ${namespace}/${name} is corrupt`);
    return secretData(parsed.resource);
  }

  async writeGenerated(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: { kind: string; name: string; uid: string },
  ): Promise<void> {
    const path = this.pathOf(namespace, name);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'ccproxy' },
        annotations: { 'ccproxy.io/owner': `${owner.kind}/${owner.name}` },
      },
      type: 'Opaque',
      data: Object.fromEntries(
        Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
      ),
    };
    // Write a temp file, then hard-link it into place: readers never see half a file, and
    // link() fails with EEXIST instead of replacing a Secret another writer created first.
    const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, stringify(secret), { mode: 0o600, flag: 'wx' });
    try {
      await link(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(temp);
    }
  }
}
