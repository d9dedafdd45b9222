import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { claudeCodeVersion } from '@ccproxy/test-harness';
import type { CellContext, Seen } from './matrix.ts';

/**
 * Golden fixtures: the requests the pinned Claude Code version really sends, recorded from the
 * binary against the Anthropic test server (the Plan path forwards bytes unchanged), one folder
 * per version. Recorded only when asked (`RECORD_CLAUDE_FIXTURES=1`); otherwise the unit tests
 * over them fail when the pinned version's folder or a fixture in it is missing.
 */
export const fixturesDir = fileURLToPath(new URL(`../fixtures/claude-code/${claudeCodeVersion}/`, import.meta.url));
export const recording = process.env.RECORD_CLAUDE_FIXTURES === '1';

export interface Fixture {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** The fixture name of a row: its name in lower-case words joined by dashes. */
export const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/**
 * What may not be kept: the credential and session headers, machine-specific headers (OS, arch,
 * runtime), the account/device id, and the scratch paths (HOME and the work folder) wherever
 * they appear in the body.
 */
export function redact(seen: Seen, cell: CellContext): Fixture {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(seen.headers))
    if ((name.startsWith('anthropic-') || name === 'x-app' || name === 'content-type') && typeof value === 'string')
      headers[name] = value;
  // Claude Code also names the project folder by its path with every other character a dash.
  const json = JSON.stringify(seen.turn.body)
    .replaceAll(cell.cwd, '/srv/project')
    .replaceAll(cell.cwd.replace(/[^a-zA-Z0-9]/g, '-'), '-srv-project')
    .replaceAll(cell.home, '/srv/home')
    .replaceAll(cell.id, 'cell');
  const body = JSON.parse(json) as Record<string, unknown>;
  if (body.metadata !== undefined) body.metadata = { user_id: 'REDACTED' };
  return { path: seen.path, headers, body };
}

/** Writes a cell's requests as `<row>.<n>.json` (only while recording). */
export async function recordFixtures(row: string, cell: CellContext, seen: Seen[]): Promise<void> {
  if (!recording) return;
  await mkdir(fixturesDir, { recursive: true });
  await Promise.all(
    seen.map((request, index) =>
      writeFile(`${fixturesDir}${slug(row)}.${index}.json`, `${JSON.stringify(redact(request, cell), null, 2)}\n`),
    ),
  );
}

export const hasFixtures = () => existsSync(fixturesDir);
