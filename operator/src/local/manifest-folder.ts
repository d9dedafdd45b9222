import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseResource, type AccessKey, type BedrockKey, type ProxyUser, type Secret } from '../resources.ts';

export interface ManifestSnapshot {
  users: ProxyUser[];
  accessKeys: AccessKey[];
  bedrockKeys: BedrockKey[];
  secrets: Secret[];
  /** One line per document that could not be used, with file and reason. */
  problems: string[];
}

/** Reads every `*.yaml` / `*.yml` under `dir` (recursively), multi-document files included. */
export async function readManifestFolder(dir: string): Promise<ManifestSnapshot> {
  const snapshot: ManifestSnapshot = { users: [], accessKeys: [], bedrockKeys: [], secrets: [], problems: [] };
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
    parseAllDocuments(text).forEach((document, index) => {
      if (document.errors.length > 0) {
        snapshot.problems.push(`${where} (document ${index + 1}): ${document.errors[0]?.message ?? 'invalid YAML'}`);
        return;
      }
      const value: unknown = document.toJS();
      if (value === null || value === undefined) return;
      const parsed = parseResource(value);
      if ('problems' in parsed) {
        snapshot.problems.push(`${where} (document ${index + 1}): ${parsed.problems.join('; ')}`);
        return;
      }
      add(snapshot, parsed.resource);
    });
  }
  return snapshot;
}

function add(snapshot: ManifestSnapshot, resource: ProxyUser | AccessKey | BedrockKey | Secret): void {
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
