import { readdir, readFile } from 'node:fs/promises';
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
}

export interface RefusedResource {
  kind: 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'TeamBudget';
  metadata: { name: string; namespace?: string };
  message: string;
}

/** Reads every `*.yaml` / `*.yml` under `dir` (recursively), multi-document files included. */
export async function readManifestFolder(dir: string): Promise<ManifestSnapshot> {
  const snapshot: ManifestSnapshot = {
    users: [],
    accessKeys: [],
    bedrockKeys: [],
    teamBudgets: [],
    secrets: [],
    problems: [],
    refused: [],
    unreadable: [],
  };
  for (const file of await yamlFiles(dir)) {
    const where = relative(dir, file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      // Deleted between listing and reading: the next sync sees the folder as it is.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    if (text.trim() === '') {
      snapshot.problems.push(`${where}: empty (delete the file to remove what it held)`);
      snapshot.unreadable.push(where);
      continue;
    }
    parseAllDocuments(text).forEach((document, index) => {
      if (document.errors.length > 0) {
        snapshot.problems.push(`${where} (document ${index + 1}): ${document.errors[0]?.message ?? 'invalid YAML'}`);
        if (!snapshot.unreadable.includes(where)) snapshot.unreadable.push(where);
        return;
      }
      const value: unknown = document.toJS();
      if (value === null || value === undefined) return;
      const parsed = parseResource(value);
      if ('problems' in parsed) {
        snapshot.problems.push(`${where} (document ${index + 1}): ${parsed.problems.join('; ')}`);
        const identity = identityOf(value);
        if (identity !== undefined)
          snapshot.refused.push({ ...identity, message: `${where}: ${parsed.problems.join('; ')}` });
        return;
      }
      add(snapshot, parsed.resource);
    });
  }
  return snapshot;
}

/** Kind and name of a refused document, when it states them plainly (else it is only a problem line). */
function identityOf(value: unknown): Omit<RefusedResource, 'message'> | undefined {
  const { kind, metadata } = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (kind !== 'ProxyUser' && kind !== 'AccessKey' && kind !== 'BedrockKey' && kind !== 'TeamBudget') return undefined;
  if (typeof metadata?.name !== 'string') return undefined;
  const { name, namespace } = metadata;
  return { kind, metadata: typeof namespace === 'string' ? { name, namespace } : { name } };
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

/** YAML files below `dir`, skipping hidden folders (a data dir such as `.data` may live inside). */
async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
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
}
