import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { aptInstall, withLock } from '@ccproxy/test-harness';

const executablePath = '/usr/bin/chromium';

/**
 * Debian's Chromium, installed with apt-get when missing and we are root (a browser download by
 * playwright cannot work here). The flags keep it off the network: this machine refuses
 * outside connections, and Chromium's background services would try many.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(executablePath)) {
    if (process.getuid?.() !== 0) throw new Error(`${executablePath} not found; install Debian's chromium package`);
    await aptInstall(['chromium']);
  }
  // launch() gives every run a new, empty profile of its own (it refuses --user-data-dir).
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const uiSource = fileURLToPath(new URL('../ui/', import.meta.url));
const distDir = fileURLToPath(new URL('../dist/', import.meta.url));
const stampFile = join(distDir, 'ui', '.source-hash');

/**
 * Builds the web UI into admin/dist/ui, as `npm run build -w admin` does, so the tests serve what
 * is in the tree. Several test files ask at once: one builds under a lock, the others find the
 * build's stamp matching the sources and reuse it. (Each building on its own emptied the folder
 * while another file's server was reading it: ENOENT on an asset, seen in a full run.)
 */
export async function buildUi(): Promise<void> {
  await mkdir(distDir, { recursive: true });
  await withLock(join(distDir, 'ui-build.lock'), 'the admin web UI', async () => {
    const hash = await sourceHash();
    if ((await readFile(stampFile, 'utf8').catch(() => '')) === hash) return;
    await build({ configFile: join(uiSource, 'vite.config.ts'), logLevel: 'error' });
    await writeFile(stampFile, hash);
  });
}

/** The UI's sources and the lockfile (its dependencies), hashed. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(uiSource, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  for (const file of [...files, fileURLToPath(new URL('../../package-lock.json', import.meta.url))])
    hash.update(file).update(await readFile(file));
  return hash.digest('hex');
}
