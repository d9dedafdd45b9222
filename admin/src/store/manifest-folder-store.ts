import { createHash } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { parse, parseAllDocuments, stringify, type Document } from 'yaml';
import { identityKey, identityOf, manifestFiles, parseResource } from '@ccproxy/operator';
import {
  adminSecretMetadata,
  freshRefusal,
  referrersOf,
  secretRefusal,
  type SecretFacts,
  type SecretFor,
  type SecretMetadata,
} from './ownership.ts';
import {
  apiVersion,
  checkValid,
  StoreError,
  type Condition,
  type Kind,
  isOfKind,
  type ResourceStore,
  type SpecOf,
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
  operator?: {
    sync(): Promise<unknown>;
    readonly lastReport: { statuses: ReadonlyMap<string, LocalStatus>; problems: readonly string[] };
    /** A file about to be replaced whole (a rename): the operator uses it without its settle window. */
    expectWrite?(file: string, text: string): void;
  };
}

interface Located {
  file: string;
  /** The whole file as read: ownership is decided on it. */
  text: string;
  documents: Document[];
  resource: StoredResource;
}

interface Scan {
  resources: Located[];
  /** Resources defined by a document the schemas refuse (the operator's Stalled ones): id → file. */
  refused: Map<string, string>;
  /** Files with a document that does not parse (or empty): what they define is unknown here. */
  broken: string[];
  /** Hand-written Secrets in the folder: `namespace/name` → file. */
  secrets: Map<string, string>;
}

/** First line of every file the admin writes; with the file name, what makes a file the admin's. */
export const fileMarker = '# managed-by: ccproxy-admin';

/**
 * Local mode's store: the manifests folder, in the YAML `kubectl apply` takes. The admin writes
 * only files of its own: `<namespace>/<kind>-<name>.yaml`, beginning with `fileMarker`, holding
 * that one resource. A resource in any other file (hand-written, GitOps-managed) is edited
 * there, by hand: the admin answers 409 naming the file and leaves it byte for byte as it was.
 * Every write is a temp file renamed (or, for a new file, hard-linked) into place — readers,
 * the operator included, never see half a file — and writes are serialized in this process, so
 * a check and its write cannot interleave with another request's.
 */
export class ManifestFolderStore implements ResourceStore {
  readonly mode = 'local';
  readonly #options: ManifestFolderStoreOptions;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ManifestFolderStoreOptions) {
    this.#options = options;
  }

  async list<K extends Kind>(kind: K): Promise<StoredResource<K>[]> {
    return this.#listIn(await this.#scan(), kind);
  }

  #listIn<K extends Kind>(scan: Scan, kind: K): StoredResource<K>[] {
    return scan.resources.map((entry) => entry.resource).filter((resource) => isOfKind(resource, kind));
  }

  async get<K extends Kind>(kind: K, namespace: string, name: string): Promise<StoredResource<K> | undefined> {
    const resource = (await this.#find(kind, namespace, name))?.resource;
    return resource !== undefined && isOfKind(resource, kind) ? resource : undefined;
  }

  create<K extends Kind>(kind: K, namespace: string, name: string, spec: SpecOf[K]): Promise<StoredResource<K>> {
    return this.#serialized(async () => {
      await this.#assertFree(kind, namespace, name);
      const object = { apiVersion, kind, metadata: { name, namespace }, spec };
      checkValid(object);
      const file = this.#ownPath(kind, namespace, name);
      const created = await atomicWrite(file, ownFileText(object), 0o644, 'create');
      if (!created)
        throw new StoreError(
          'conflict',
          `${this.#relative(file)} is in the way: it is not a file the admin created for ${kind} ${namespace}/${name}; nothing was written`,
        );
      return toStored(object);
    });
  }

  update<K extends Kind>(
    kind: K,
    namespace: string,
    name: string,
    spec: SpecOf[K],
    resourceVersion: string,
  ): Promise<StoredResource<K>> {
    return this.#serialized(async () => {
      const found = await this.#find(kind, namespace, name);
      if (found === undefined) throw new StoreError('not_found', `${kind} ${namespace}/${name} not found`);
      this.#assertOwnFile(found);
      if (found.resource.resourceVersion !== resourceVersion)
        throw new StoreError('conflict', `${kind} ${namespace}/${name} was changed by someone else; reload and retry`);
      const labels = found.resource.labels;
      const object = {
        apiVersion,
        kind,
        metadata: { name, namespace, ...(labels === undefined ? {} : { labels }) },
        spec,
      };
      checkValid(object);
      const text = ownFileText(object);
      this.#options.operator?.expectWrite?.(found.file, text);
      await atomicWrite(found.file, text, 0o644, 'replace');
      return toStored(object);
    });
  }

  delete(kind: Kind, namespace: string, name: string): Promise<void> {
    return this.#serialized(async () => {
      const found = await this.#find(kind, namespace, name);
      if (found === undefined) throw new StoreError('not_found', `${kind} ${namespace}/${name} not found`);
      this.#assertOwnFile(found);
      await rm(found.file);
    });
  }

  writeSecret(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: SecretFor,
    options: { fresh?: boolean } = {},
  ): Promise<void> {
    return this.#serialized(async () => {
      const facts = await this.#secretFacts(namespace, name, owner);
      const refusal =
        secretRefusal(facts, owner) ?? (options.fresh === true ? await this.#freshRefusal(facts, owner) : undefined);
      if (refusal !== undefined) throw new StoreError('conflict', refusal);
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name, namespace, ...adminSecretMetadata(owner) },
        data: Object.fromEntries(
          Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
        ),
      };
      // A new Secret is linked into place, never over one the operator generated meanwhile.
      const mode = facts.metadata === undefined ? 'create' : 'replace';
      if (!(await atomicWrite(this.#secretPath(namespace, name), stringify(secret), 0o600, mode)))
        throw new StoreError('conflict', `Secret ${namespace}/${name} was created meanwhile; retry`);
    });
  }

  ignored(): readonly string[] {
    return this.#options.operator?.lastReport.problems ?? [];
  }

  deleteSecret(namespace: string, name: string, owner: SecretFor): Promise<void> {
    return this.#serialized(async () => {
      const facts = await this.#secretFacts(namespace, name, owner);
      if (facts.metadata !== undefined && secretRefusal(facts, owner) === undefined)
        await rm(this.#secretPath(namespace, name), { force: true });
    });
  }

  /** A fresh write over an existing Secret: refused unless it is an earlier attempt's leftover (by its age). */
  async #freshRefusal(facts: SecretFacts, owner: SecretFor): Promise<string | undefined> {
    if (facts.metadata === undefined) return undefined;
    const written = await stat(this.#secretPath(facts.namespace, facts.name)).then(
      (stats) => stats.mtimeMs,
      () => Date.now(),
    );
    return freshRefusal(facts.namespace, facts.name, owner, Date.now() - written);
  }

  /** Everything the ownership rule looks at for one Secret name. */
  async #secretFacts(namespace: string, name: string, owner: SecretFor): Promise<SecretFacts> {
    const scan = await this.#scan();
    const manifestFile = scan.secrets.get(`${namespace}/${name}`);
    const metadata = await readFile(this.#secretPath(namespace, name), 'utf8').then(
      (text) => metadataOf(text),
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      },
    );
    return {
      namespace,
      name,
      ...(manifestFile === undefined ? {} : { manifestFile: this.#relative(manifestFile) }),
      ...(metadata === undefined ? {} : { metadata }),
      referrers: await referrersOf({ list: async (kind) => this.#listIn(scan, kind) }, namespace, name, owner),
    };
  }

  /** The one decision for resource files: the admin's own name, its marker, that one resource. */
  #assertOwnFile(found: Located): void {
    const { kind, namespace, name } = found.resource;
    const own =
      found.file === this.#ownPath(kind, namespace, name) &&
      found.text.startsWith(`${fileMarker}\n`) &&
      found.documents.filter((doc) => doc.contents !== null).length === 1;
    if (!own)
      throw new StoreError(
        'conflict',
        `${kind} ${namespace}/${name} is managed in ${this.#relative(found.file)}; edit it there`,
      );
  }

  #ownPath(kind: Kind, namespace: string, name: string): string {
    return join(this.#options.manifestsDir, namespace, `${kind.toLowerCase()}-${name}.yaml`);
  }

  #relative(file: string): string {
    return relative(this.#options.manifestsDir, file);
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

  /**
   * A name is free only when no file defines it: a valid document, one the schemas refuse (the
   * operator holds it Stalled, and a second file would be an ignored copy the admin could then
   * neither show nor delete), or one the operator still has from a file that does not read whole.
   */
  async #assertFree(kind: Kind, namespace: string, name: string): Promise<void> {
    const scan = await this.#scan();
    const id = identityKey({ kind, metadata: { name, namespace } });
    if (scan.resources.some(({ resource: r }) => r.kind === kind && r.namespace === namespace && r.name === name))
      throw new StoreError('conflict', `${kind} ${namespace}/${name} already exists`);
    const refusedIn = scan.refused.get(id);
    if (refusedIn !== undefined)
      throw new StoreError(
        'conflict',
        `${kind} ${namespace}/${name} is defined in ${this.#relative(refusedIn)}, which the schemas refuse; fix or remove it there`,
      );
    if (scan.broken.length > 0 && this.#options.operator?.lastReport.statuses.has(id) === true)
      throw new StoreError(
        'conflict',
        `${kind} ${namespace}/${name} already exists, in a manifest that does not read whole now (${scan.broken.map((f) => this.#relative(f)).join(', ')}); fix that file first`,
      );
  }

  async #find(kind: Kind, namespace: string, name: string): Promise<Located | undefined> {
    return (await this.#scan()).resources.find(
      (entry) => entry.resource.kind === kind && entry.resource.namespace === namespace && entry.resource.name === name,
    );
  }

  /** Every valid ProxyUser/AccessKey/BedrockKey/TeamBudget document in the folder, with where it lives; and the folder's Secrets. */
  async #scan(): Promise<Scan> {
    const dir = this.#options.manifestsDir;
    const files = await manifestFiles(dir);
    const found: Located[] = [];
    const seen = new Set<string>();
    const secrets = new Map<string, string>();
    const claimed = new Map<string, string>();
    const broken: string[] = [];
    const statuses = this.#options.operator?.lastReport.statuses;
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const documents = parseAllDocuments(text);
      if (!Array.isArray(documents)) continue;
      // The operator's rule (readManifestFolder, with its identityOf): the first file holding a
      // resource defines it, and within a file a valid copy before a refused one; later copies are ignored.
      const refused: string[] = [];
      if (text.trim() === '' || documents.some((document) => document.errors.length > 0)) broken.push(file);
      documents.forEach((document) => {
        if (document.errors.length > 0) return;
        const value = document.toJS() as RawObject | null;
        const identity = value === null ? undefined : identityOf(value);
        if (value === null || identity === undefined) return;
        const id = identityKey(identity);
        const secretId = `${identity.metadata.namespace ?? 'default'}/${identity.metadata.name}`;
        const parsed = parseResource(value);
        if ('problems' in parsed) {
          refused.push(id);
          // A refused Secret still claims its name (as in the operator): the admin writes no other in its place.
          if (identity.kind === 'Secret' && !seen.has(id) && !secrets.has(secretId)) secrets.set(secretId, file);
          return;
        }
        if (seen.has(id)) return;
        seen.add(id);
        if (parsed.resource.kind === 'Secret') {
          secrets.set(secretId, file);
          return;
        }
        // The parsed spec, defaults filled: what the operator's schemas say the resource is.
        const { kind, spec } = parsed.resource;
        const resource = toStored({ kind, metadata: value.metadata, spec }, value);
        if (statuses !== undefined) this.#attachStatus(resource, statuses);
        found.push({ file, text, documents, resource });
      });
      for (const id of refused) {
        if (!seen.has(id) && !id.startsWith('Secret/')) claimed.set(id, file);
        seen.add(id);
      }
    }
    return { resources: found, refused: claimed, broken, secrets };
  }
}

interface RawObject {
  kind: Kind | 'Secret';
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

interface KindObject<K extends Kind> {
  kind: K;
  metadata: RawObject['metadata'];
  spec: SpecOf[K];
}

/** `document` is the object as written (its digest is the version), `object` the same with its spec parsed. */
function toStored<K extends Kind>(object: KindObject<K>, document: object = object): StoredResource<K> {
  // The version is a digest of the document itself: any edit, by the admin or by hand, changes it.
  const resourceVersion = createHash('sha256').update(JSON.stringify(document)).digest('base64url').slice(0, 16);
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

/** A Secret file's metadata; an unreadable one has none, so the rule finds it is not the admin's. */
function metadataOf(text: string): SecretMetadata {
  try {
    return (parse(text) as { metadata?: SecretMetadata } | null)?.metadata ?? {};
  } catch {
    return {};
  }
}

function ownFileText(object: unknown): string {
  return `${fileMarker}\n${stringify(object)}`;
}

/**
 * Writes through a temp file. `create` hard-links it into place, which fails (false) rather
 * than replace a file that exists, whoever wrote it; `replace` renames it over the target.
 */
async function atomicWrite(file: string, text: string, mode: number, how: 'create' | 'replace'): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true });
  // A dot name that does not end in .yaml: the operator's folder watch ignores it.
  const temp = join(dirname(file), `.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(temp, text, { mode, flag: 'wx' });
  try {
    if (how === 'replace') await rename(temp, file);
    else await link(temp, file);
    return true;
  } catch (error) {
    if (how === 'create' && (error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}
