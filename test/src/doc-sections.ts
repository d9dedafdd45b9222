import { readFile, writeFile } from 'node:fs/promises';
import { withLock } from './build-lock.ts';

/**
 * Replaces one generated section of a Markdown document, between `<!-- section:NAME -->` and
 * `<!-- /section:NAME -->`, leaving the rest as it is (appending the section when it is not there
 * yet), under a lock file: two test files that each generate part of one document run in
 * parallel workers and must never clobber each other's part.
 */
export async function writeDocSection(file: string, name: string, content: string): Promise<void> {
  await withLock(`${file}.lock`, `writing ${name} of ${file}`, async () => {
    const begin = `<!-- section:${name} -->`;
    const end = `<!-- /section:${name} -->`;
    const old = await readFile(file, 'utf8').catch(() => '');
    const section = `${begin}\n${content.trim()}\n${end}`;
    const from = old.indexOf(begin);
    const to = old.indexOf(end);
    const next =
      from >= 0 && to > from
        ? `${old.slice(0, from)}${section}${old.slice(to + end.length)}`
        : `${old.trimEnd()}${old === '' ? '' : '\n\n'}${section}\n`;
    await writeFile(file, next);
  });
}
