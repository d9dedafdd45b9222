import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  parseResource,
  type AccessKey,
  type BedrockKey,
  type ProxyUser,
  type Secret,
  type TeamBudget,
} from '../resources.ts';

export interface ManifestSnapshot {
  users: ProxyUser[];
  accessKeys: AccessKey[];
  bedrockKeys: BedrockKey[];
  teamBudgets: TeamBudget[];
  secrets: Secret[];
  /** One line per document that could not be used, with file and reason. */
  problems: string[];
  /**
   * The resources among those documents that say who they are (kind, name): refused, with the
   * message naming the field. They are Stalled, not absent: what an earlier, valid version of
   * them put in Postgres stays as it was (a typo in a file must not delete a key).
   */
  refused: RefusedResource[];
  /**
   * Files that could not be read whole: a YAML syntax error, or empty (an editor saving in place
   * truncates first). What they held is unknown, so a sync removes nothing while there are any.
   */
  unreadable: string[];
  /**
   * Files changed within the settle window (not written whole by the admin): possibly still being
   * written (a generator's `> file` writes in steps, and a cut at a line end is valid YAML that
   * may lack a line that mattered). Their previous contents stand in for them until they have
   * been unchanged for the window (`until`, ms since the epoch).
   */
  settling: { file: string; until: number }[];
  /** Each file's contents as this snapshot used them: the memory the next read compares against. */
  files: Map<string, ManifestFile>;
}

/** One readable file's resources as read (`mtimeMs`: when it was last changed). */
export interface ManifestFile {
  mtimeMs: number;
  resources: Array<ProxyUser | AccessKey | BedrockKey | TeamBudget | Secret>;
  problems: string[];
  refused: RefusedResource[];
  /** Not readable whole: empty, or a document with a YAML syntax error (the others are still here). */
  broken: boolean;
  /**
   * Its text does not end with a line break: a write cut in the middle of a line (a generator
   * flushes at any byte) reads as valid YAML with a shortened value, so within the settle window
   * such a file stands as it was.
   */
  unterminated: boolean;
  /** The text as read: a rewrite cut short is a shortened copy of what the file held. */
  text: string;
  /** While a newer text settles in place of this one: that text, and when it was first seen. */
  pending?: { text: string; at: number };
}

export interface ReadOptions {
  /** What the last sync used, per file (`files` of its snapshot). */
  previous?: ReadonlyMap<string, ManifestFile>;
  /**
   * How long a changed file must be unchanged before its new contents are used (until then its
   * previous contents stand): a write in steps can stop at any line, and a valid file cut there
   * can lack a line that mattered (`revoked: true`).
   */
  settleMs?: number;
  /** Texts written whole (an atomic rename by the admin), by file: used at once, no window. */
  writtenWhole?: ReadonlyMap<string, string>;
  now?: number;
}

export interface RefusedResource {
  kind: 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'TeamBudget' | 'Secret';
  metadata: { name: string; namespace?: string };
  message: string;
}

/** Reads every `*.yaml` / `*.yml` under `dir` (recursively), multi-document files included. */
export async function readManifestFolder(dir: string, options: ReadOptions = {}): Promise<ManifestSnapshot> {
  const snapshot: ManifestSnapshot = {
    users: [],
    accessKeys: [],
    bedrockKeys: [],
    teamBudgets: [],
    secrets: [],
    problems: [],
    refused: [],
    unreadable: [],
    settling: [],
    files: new Map(),
  };
  const now = options.now ?? Date.now();
  // One definition per resource: the first file (in name order) holds it, a later one is named.
  const definedIn = new Map<string, string>();
  const firstDefinition = (
    resource: { kind: string; metadata: { name: string; namespace?: string } },
    where: string,
  ) => {
    const id = identityKey(resource);
    const first = definedIn.get(id);
    if (first === undefined) definedIn.set(id, where);
    else
      snapshot.problems.push(
        `${where}: ${id} is also in ${first}; this copy is ignored (each resource is defined in one file; during a move between files, for up to the settle window)`,
      );
    return first === undefined;
  };
  for (const file of await manifestFiles(dir)) {
    const where = relative(dir, file);
    const read = await readManifestFile(file, where);
    if (read === undefined) continue;
    const before = options.previous?.get(where);
    // A modification time in the future (a copy kept from a host whose clock runs ahead) is not
    // trusted: the window runs from when this text was first seen.
    const pending = before?.pending;
    const changedAt =
      read.mtimeMs <= now ? read.mtimeMs : pending !== undefined && pending.text === read.text ? pending.at : now;
    const until = changedAt + (options.settleMs ?? 0);
    const settling =
      before !== undefined &&
      until > now &&
      read.text !== before.text &&
      options.writtenWhole?.get(where) !== read.text;
    // Named as a problem when it looks unfinished; any other change settles quietly.
    const why = settling ? unfinished(before, read) : undefined;
    const inFlux = settling && before !== undefined;
    // A file that does not read whole stands as it was last read whole, in and after the window:
    // what its broken document held is still defined here (never handed to a copy in a later file).
    const used = inFlux || (read.broken && before !== undefined) ? before : read;
    if (inFlux) {
      snapshot.settling.push({ file: where, until });
      if (why !== undefined)
        snapshot.problems.push(
          `${where}: changed ${Math.round(now - changedAt)} ms ago and ${why}; its previous contents stand until it has not changed for ${options.settleMs ?? 0} ms`,
        );
    }
    // What the next read compares against: the last version read whole.
    snapshot.files.set(
      where,
      inFlux
        ? { ...before, pending: { text: read.text, at: changedAt } }
        : used.broken && before !== undefined
          ? before
          : used,
    );
    // `used` may be a broken earlier read standing in (a file first seen broken): unreadable too.
    // Not an empty file unchanged for the window: it is no save under way and hides nothing (a
    // stray `touch new.yaml` must not stop every removal; what it held before still stands).
    const settledEmpty = read.text.trim() === '' && until <= now;
    if ((read.broken || used.broken) && !settledEmpty) snapshot.unreadable.push(where);
    snapshot.problems.push(...(read.broken ? read.problems : used.problems));
    // A file's valid documents first: within one file, a valid copy wins over a refused one.
    // Standing in for the file as read, the previous contents still take its revocations.
    const resources = used === read ? read.resources : withRestrictions(used.resources, read.resources);
    for (const resource of resources) if (firstDefinition(resource, where)) add(snapshot, resource);
    for (const refused of used.refused) if (firstDefinition(refused, where)) snapshot.refused.push(refused);
  }
  return snapshot;
}

/** One file's documents (those that parse, even when others do not); undefined when it vanished since the listing. */
async function readManifestFile(file: string, where: string): Promise<ManifestFile | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    // The time first: a write landing between the two makes the file look newer, never older.
    mtimeMs = (await stat(file)).mtimeMs;
    text = await readFile(file, 'utf8');
  } catch (error) {
    // Deleted between listing and reading: the next sync sees the folder as it is.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const read: ManifestFile = {
    mtimeMs,
    resources: [],
    problems: [],
    refused: [],
    broken: false,
    unterminated: !text.endsWith('\n'),
    text,
  };
  if (text.trim() === '') {
    read.problems.push(`${where}: empty (delete the file to remove what it held)`);
    read.broken = true;
    return read;
  }
  parseAllDocuments(text).forEach((document, index) => {
    if (document.errors.length > 0) {
      read.problems.push(`${where} (document ${index + 1}): ${document.errors[0]?.message ?? 'invalid YAML'}`);
      read.broken = true;
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    const parsed = parseResource(value);
    if ('problems' in parsed) {
      read.problems.push(`${where} (document ${index + 1}): ${parsed.problems.join('; ')}`);
      const identity = identityOf(value);
      if (identity !== undefined)
        read.refused.push({ ...identity, message: `${where}: ${parsed.problems.join('; ')}` });
      return;
    }
    read.resources.push(parsed.resource);
  });
  return read;
}

/**
 * Who a document says it is, as `kind/namespace/name` (no namespace: `default`): the one rule by
 * which the operator and the admin's folder store tell copies of a resource apart.
 */
export const identityKey = (o: { kind: string; metadata: { name: string; namespace?: string | undefined } }) =>
  `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;

/**
 * Why a file changed within the settle window may still be being written (undefined: it reads
 * as finished). A write in steps leaves a prefix of what is coming: a cut at a document boundary
 * drops resources, one mid-line leaves no final line break, and one at a line end of a rewrite
 * of the same contents (a generator run again) is a shortened copy of what the file held.
 */
function unfinished(before: ManifestFile, read: ManifestFile): string | undefined {
  if (read.broken) return 'does not read whole';
  if (read.unterminated) return 'does not end with a line break';
  if (read.text.length < before.text.length && before.text.startsWith(read.text))
    return 'is a shortened copy of what it held';
  if (dropsSomething(before, read)) return 'lacks a resource it held';
  return undefined;
}

/**
 * `before`'s resources with each revocation (`revoked: true`) and suspension (`suspended: true`)
 * that `read` gives them. These apply at once, within the settle window and while a file does not
 * read whole: a write cut short lacks lines of the finished file and never holds one it lacks, so
 * a flag set in it is set in the finished file too; what a cut can fake is a missing flag, which
 * waits (cli/test/replicas.test.ts: a revocation by hand still reaches every replica in a second).
 */
function withRestrictions(
  before: ManifestFile['resources'],
  read: ManifestFile['resources'],
): ManifestFile['resources'] {
  const restricted = new Set(
    read
      .filter((r) => (r.kind === 'AccessKey' && r.spec.revoked) || (r.kind === 'ProxyUser' && r.spec.suspended))
      .map(identityKey),
  );
  if (restricted.size === 0) return before;
  return before.map((r) => {
    if (!restricted.has(identityKey(r))) return r;
    if (r.kind === 'AccessKey') return { ...r, spec: { ...r.spec, revoked: true } };
    if (r.kind === 'ProxyUser') return { ...r, spec: { ...r.spec, suspended: true } };
    return r;
  });
}

/** Whether `now` lacks a resource (valid or refused) that `before` held. */
function dropsSomething(before: ManifestFile, now: ManifestFile): boolean {
  const held = new Set([...now.resources, ...now.refused].map(identityKey));
  return [...before.resources, ...before.refused].some((o) => !held.has(identityKey(o)));
}

/**
 * Kind and name of a document (a refused one too), when it states a kind of ours and a string
 * name (else a refused one is only a problem line). A namespace that is not a string is read as
 * its text (`2024`), as YAML tools print it, never as `default`: a typo there must not make the
 * document stand for another resource.
 */
export function identityOf(value: unknown): Omit<RefusedResource, 'message'> | undefined {
  const { kind, metadata } = (value ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (
    kind !== 'ProxyUser' &&
    kind !== 'AccessKey' &&
    kind !== 'BedrockKey' &&
    kind !== 'TeamBudget' &&
    kind !== 'Secret'
  )
    return undefined;
  if (typeof metadata?.name !== 'string') return undefined;
  const { name, namespace } = metadata;
  return {
    kind,
    metadata: namespace === undefined || namespace === null ? { name } : { name, namespace: String(namespace) },
  };
}

function add(snapshot: ManifestSnapshot, resource: ProxyUser | AccessKey | BedrockKey | TeamBudget | Secret): void {
  switch (resource.kind) {
    case 'ProxyUser':
      snapshot.users.push(resource);
      break;
    case 'AccessKey':
      snapshot.accessKeys.push(resource);
      break;
    case 'BedrockKey':
      snapshot.bedrockKeys.push(resource);
      break;
    case 'TeamBudget':
      snapshot.teamBudgets.push(resource);
      break;
    case 'Secret':
      snapshot.secrets.push(resource);
      break;
  }
}

/**
 * The manifest files below `dir`, sorted: `*.yaml` / `*.yml` regular files and symbolic links to
 * regular files (a ConfigMap mounted as a volume is all links), skipping hidden folders (a data
 * dir such as `.data` may live inside; a ConfigMap's `..data`). The one listing the operator and
 * the admin's folder store both read.
 */
export async function manifestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const files: string[] = [];
  for (const entry of entries) {
    if (!/\.ya?ml$/.test(entry.name)) continue;
    if (
      relative(dir, entry.parentPath)
        .split(sep)
        .some((part) => part.startsWith('.'))
    )
      continue;
    const path = join(entry.parentPath, entry.name);
    if (
      entry.isFile() ||
      (entry.isSymbolicLink() &&
        (await stat(path).then(
          (target) => target.isFile(),
          () => false,
        )))
    )
      files.push(path);
  }
  return files.sort();
}
