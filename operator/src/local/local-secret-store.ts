import { link, mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseResource, secretData, type Secret } from '../resources.ts';
import {
  ownerAnnotations,
  ownerFromAnnotation,
  type SecretOwner,
  type SecretStore,
  type StoredSecret,
} from '../reconcile/secret-store.ts';

/**
 * Local mode's Secrets: those in the manifests folder (bring-your-own keys) take precedence;
 * generated ones are written as `v1/Secret` YAML under `<dataDir>/secrets/<namespace>/<name>.yaml`,
 * mode 0600, in the same shape `kubectl apply` accepts.
 */
export class LocalSecretStore implements SecretStore {
  readonly #dir: string;
  #folder = new Map<string, Secret>();
  /** Secrets of the folder that do not validate, by `namespace/name`: the message why. */
  #refused = new Map<string, string>();

  constructor(dataDir: string) {
    this.#dir = join(dataDir, 'secrets');
  }

  /**
   * Secrets currently in the manifests folder, and those it holds that do not validate. A
   * refused one still claims its name: reading it fails, naming the problem, so the resource
   * using it keeps what it had (its key stays as it was) instead of a key being generated in
   * its place, which a typo such as `data:` for `stringData:` must never cause.
   */
  useFolderSecrets(
    secrets: readonly Secret[],
    refused: ReadonlyArray<{ metadata: { name: string; namespace?: string }; message: string }> = [],
  ): void {
    this.#folder = new Map(
      secrets.map((secret) => [`${secret.metadata.namespace ?? 'default'}/${secret.metadata.name}`, secret]),
    );
    this.#refused = new Map(
      refused.map((secret) => [`${secret.metadata.namespace ?? 'default'}/${secret.metadata.name}`, secret.message]),
    );
  }

  pathOf(namespace: string, name: string): string {
    return join(this.#dir, namespace, `${name}.yaml`);
  }

  async read(namespace: string, name: string): Promise<StoredSecret | undefined> {
    const refused = this.#refused.get(`${namespace}/${name}`);
    if (refused !== undefined)
      throw new Error(
        `Secret ${namespace}/${name} in the manifests folder is refused (${refused}); fix it: nothing is generated in its place`,
      );
    const secret =
      this.#folder.get(`${namespace}/${name}`) ?? (await this.#readGenerated(this.pathOf(namespace, name)));
    if (secret === undefined) return undefined;
    const owner = ownerFromAnnotation(secret.metadata.annotations);
    return { data: secretData(secret), ...(owner === undefined ? {} : { owner }) };
  }

  async #readGenerated(path: string): Promise<Secret | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = parseResource(parse(text));
    if ('problems' in parsed || parsed.resource.kind !== 'Secret')
      throw new Error(`generated Secret ${path} is corrupt`);
    return parsed.resource;
  }

  /**
   * Local mode's garbage collection (Kubernetes deletes a generated Secret with its owner): the
   * data dir's Secrets for which `garbage(namespace, owner)` holds are removed — those of an
   * AccessKey that is gone, or of an earlier one of the same name (another uid) — so a
   * re-created AccessKey gets a new key instead of the deleted one's.
   */
  async collectGarbage(garbage: (namespace: string, owner: SecretOwner) => boolean): Promise<void> {
    const namespaces = await readdir(this.#dir).catch(() => [] as string[]);
    for (const namespace of namespaces) {
      const dir = join(this.#dir, namespace);
      const files = await readdir(dir).catch(() => [] as string[]);
      for (const file of files.filter((name) => name.endsWith('.yaml'))) {
        const secret = await this.#readGenerated(join(dir, file)).catch(() => undefined);
        const owner = ownerFromAnnotation(secret?.metadata.annotations);
        if (owner !== undefined && garbage(namespace, owner)) await unlink(join(dir, file)).catch(() => undefined);
      }
    }
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
        annotations: ownerAnnotations(owner),
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
