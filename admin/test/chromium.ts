import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { aptInstall } from '@ccproxy/test-harness';

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

/** Builds the web UI into admin/dist/ui, as `npm run build -w admin` does, so the test serves what it just built. */
export async function buildUi(): Promise<void> {
  await build({ configFile: new URL('../ui/vite.config.ts', import.meta.url).pathname, logLevel: 'error' });
}
