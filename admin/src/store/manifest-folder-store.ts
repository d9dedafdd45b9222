import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { parseAllDocuments, stringify, type Document } from 'yaml';
import { parseResource } from '@ccproxy/operator';
import {
  apiVersion,
  StoreError,
  type Condition,
  type Kind,
  type ResourceStore,
  type StoredResource,
} from './resource-store.ts';

export interface LocalStatus {
  conditions: Condition[];
  fields?: Record<string, unknown>;
}

export interface ManifestFolderStoreOptions {
  manifestsDir: string;
  /** Generated Secrets go where the local operator reads them: `<dataDir>/secrets/<ns>/<name>.yaml`, never into the (often committed) manifests folder. */
  dataDir: string;
  /**
   * The local operator: its last report gives the status of each resource, and every write
   * waits for a sync that started after it, so an answer already shows what the operator did.
   */
  operator?: { sync(): Promise<unknown>; readonly lastReport: { statuses: ReadonlyMap<string, LocalStatus> } };
}

interface Located {
  file: string;
  index: number;
  documents: Document[];
  resource: StoredResource;
}

/**
 * Local mode's store: the manifests folder, in the YAML `kubectl apply` takes. New objects get
 * a file of their own (`<namespace>/<kind>-<name>.yaml`); objects in hand-written multi-document
 * files are edited in place with their comments kept. Every write is a temp file renamed over
 * the target (readers, the operator included, never see half a file), and writes are serialized
 * in this process, so a version check and its write cannot interleave with another request's.
 */
export class ManifestFolderStore implements ResourceStore {
  readonly mode = 'local';
  readonly #options: ManifestFolderStoreOptions;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ManifestFolderStoreOptions) {
    this.#options = options;
  }

  async list(kind: Kind): Promise<StoredResource[]> {
    return (await this.#scan()).filter((entry) => entry.resource.kind === kind).map((entry) => entry.resource);
  }

  async get(kind: Kind, namespace: string, name: string): Promise<StoredResource | undefined> {
    return (await this.#find(kind, namespace, name))?.resource;
  }

  create(kind: Kind, namespace: string, name: string, spec: Record<string, unknown>): Promise<StoredResource> {
    return this.#serialized(async () => {
      if ((await this.#find(kind, namespace, name)) !== undefined)
        throw new StoreError('conflict', `${kind} ${namespace}/${name} already exists`);
      const object = { apiVersion, kind, metadata: { name, namespace }, spec };
      checkValid(object);
      const file = join(this.#options.manifestsDir, namespace, `${kind.toLowerCase()}-${name}.yaml`);
      await atomicWrite(file, stringify(object), 0o644);
      return toStored(object, file);
    });
  }

  update(
    kind: Kind,
    namespace: string,
    name: string,
    spec: Record<string, unknown>,
    resourceVersion: string,
  ): Promise<StoredResource> {
    return this.#serialized(async () => {
      const found = await this.#find(kind, namespace, name);
      if (found === undefined) throw new StoreError('not_found', `${kind} ${namespace}/${name} not found`);
      if (found.resource.resourceVersion !== resourceVersion)
        throw new StoreError('conflict', `${kind} ${namespace}/${name} was changed by someone else; reload and retry`);
      const document = found.documents[found.index] as Document;
      document.set('spec', document.createNode(spec));
      checkValid(document.toJS());
      await atomicWrite(found.file, found.documents.map((doc) => doc.toString()).join('---\n'), 0o644);
      return toStored(document.toJS() as RawObject, found.file);
    });
  }

  delete(kind: Kind, namespace: string, name: string): Promise<void> {
    return this.#serialized(async () => {
      const found = await this.#find(kind, namespace, name);
      if (found === undefined) throw new StoreError('not_found', `${kind} ${namespace}/${name} not found`);
      const rest = found.documents.filter((_doc, index) => index !== found.index);
      if (rest.every((doc) => doc.contents === null)) await rm(found.file);
      else await atomicWrite(found.file, rest.map((doc) => doc.toString()).join('---\n'), 0o644);
    });
  }

  writeSecret(namespace: string, name: string, data: Record<string, string>): Promise<void> {
    return this.#serialized(async () => {
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'ccproxy-admin' } },
        data: Object.fromEntries(
          Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
        ),
      };
      await atomicWrite(this.#secretPath(namespace, name), stringify(secret), 0o600);
    });
  }

  deleteSecret(namespace: string, name: string): Promise<void> {
    return this.#serialized(() => rm(this.#secretPath(namespace, name), { force: true }));
  }

  #secretPath(namespace: string, name: string): string {
    return join(this.#options.dataDir, 'secrets', namespace, `${name}.yaml`);
  }

  /** Runs writes one after another; the operator is nudged after each. */
  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => undefined);
    return run.then(async (value) => {
      const operator = this.#options.operator;
      // sync() joins a sync already running, which may have read the folder before this write;
      // the second call is then the follow-up sync, which starts after it.
      await operator
        ?.sync()
        .then(() => operator.sync())
        .catch(() => undefined);
      if (value !== undefined && operator !== undefined)
        this.#attachStatus(value as StoredResource, operator.lastReport.statuses);
      return value;
    });
  }

  #attachStatus(resource: StoredResource, statuses: ReadonlyMap<string, LocalStatus>): void {
    const status = statuses.get(`${resource.kind}/${resource.namespace}/${resource.name}`);
    if (status !== undefined) resource.status = { conditions: status.conditions, fields: status.fields ?? {} };
  }

  async #find(kind: Kind, namespace: string, name: string): Promise<Located | undefined> {
    return (await this.#scan()).find(
      (entry) => entry.resource.kind === kind && entry.resource.namespace === namespace && entry.resource.name === name,
    );
  }

  /** Every valid ProxyUser/AccessKey/BedrockKey document in the folder, with where it lives. */
  async #scan(): Promise<Located[]> {
    const dir = this.#options.manifestsDir;
    const entries = await readdir(dir, { withFileTypes: true, recursive: true });
    const files = entries
      .filter(
        (entry) =>
          entry.isFile() &&
          /\.ya?ml$/.test(entry.name) &&
          !relative(dir, entry.parentPath)
            .split(sep)
            .some((part) => part.startsWith('.')),
      )
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();
    const found: Located[] = [];
    const statuses = this.#options.operator?.lastReport.statuses;
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const documents = parseAllDocuments(text);
      if (!Array.isArray(documents)) continue;
      documents.forEach((document, index) => {
        if (document.errors.length > 0) return;
        const value = document.toJS() as RawObject | null;
        if (value === null || !['ProxyUser', 'AccessKey', 'BedrockKey'].includes(value.kind)) return;
        if ('problems' in parseResource(value)) return;
        const resource = toStored(value, file);
        if (statuses !== undefined) this.#attachStatus(resource, statuses);
        found.push({ file, index, documents, resource });
      });
    }
    return found;
  }
}

interface RawObject {
  kind: Kind;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

function toStored(object: RawObject, _file: string): StoredResource {
  // The version is a digest of the document itself: any edit, by the admin or by hand, changes it.
  const resourceVersion = createHash('sha256').update(JSON.stringify(object)).digest('base64url').slice(0, 16);
  return {
    kind: object.kind,
    namespace: object.metadata.namespace ?? 'default',
    name: object.metadata.name,
    resourceVersion,
    spec: object.spec,
    ...(object.metadata.labels === undefined ? {} : { labels: object.metadata.labels }),
    status: { conditions: [], fields: {} },
  };
}

/** What the local operator would refuse is refused here, before anything is written. */
function checkValid(object: unknown): void {
  const parsed = parseResource(object);
  if ('problems' in parsed) throw new StoreError('invalid', parsed.problems.join('; '));
}

async function atomicWrite(file: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // A dot name that does not end in .yaml: the operator's folder watch ignores it.
  const temp = join(dirname(file), `.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(temp, text, { mode, flag: 'wx' });
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
