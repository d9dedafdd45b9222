import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { buildUi, launchChromium } from './chromium.ts';
import { freePort, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Self-service end to end with real parts only: the real `ccproxy local` process (proxy, local
 * operator and admin with single sign-on), a real OpenID Connect issuer (oidc-provider), the
 * Anthropic test server upstream, and Chromium. A developer signs in at the issuer, lands on My
 * keys, issues a key, uses it through the proxy (200), rotates it (the old key stops within a
 * second: the rotation grace period is 0 here), and revokes it; the page is axe-clean and no
 * key appears in the process's log.
 */
const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const screenshots = fileURLToPath(new URL('../test-output/screenshots/', import.meta.url));
const docsScreenshots = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
let dir: string;
let issuer: TestIssuer;
let anthropic: AnthropicTestServer;
let ccproxy: CcproxyProcess;
let browser: Browser;
let adminUrl: string;
const seen: string[] = [];

const manifests = `apiVersion: ccproxy.io/v1alpha1
kind: ProxyUser
metadata: { name: dev, namespace: team-a }
spec:
  displayName: Dev One
  identity: { subject: dev-sub }
  selfService: { maxKeys: 2, routingModes: [PlanOnly, PlanWithFailover] }
`;

async function ask(key: string) {
  const response = await fetch(`${ccproxy.url}/ak/${key}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-dev', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Milliseconds until `key` answers `status` (polled every 20 ms), or a failure after `limitMs`. */
async function until(key: string, status: number, limitMs: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const answered = await ask(key);
    if (answered === status) return performance.now() - start;
    if (performance.now() - start > limitMs) throw new Error(`still ${answered}, not ${status}, after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The key-once dialog: read the key, confirm, close. */
async function takeKey(page: Page): Promise<string> {
  const key = (await page.getByTestId('access-key').textContent()) ?? '';
  seen.push(key);
  await page.getByLabel('I have copied it').check();
  await page.getByRole('button', { name: 'Done' }).click();
  return key;
}

async function axe(page: Page) {
  await page.waitForTimeout(300);
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const run = (
      window as unknown as {
        axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ html: string }> }> }> };
      }
    ).axe;
    return (await run.run()).violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => `${violation.id} ${violation.nodes.map((node) => node.html.slice(0, 120)).join(' | ')}`);
  });
}

beforeAll(async () => {
  await buildUi();
  await mkdir(screenshots, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'ccproxy-self-'));
  await mkdir(join(dir, 'manifests'));
  await writeFile(join(dir, 'manifests', 'dev.yaml'), manifests);
  anthropic = await startAnthropicServer();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, {
    'dev-sub': { email: 'dev@example.com', name: 'Dev One', groups: ['devs'] },
  });
  ccproxy = await startCcproxy(
    ['local', '--manifests', join(dir, 'manifests')],
    {
      CCPROXY_DATA_DIR: join(dir, '.data'),
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      CCPROXY_ADMIN_PORT: String(adminPort),
      CCPROXY_ADMIN_PASSWORD: 'break-glass password for the test',
      CCPROXY_ROTATION_GRACE_SECONDS: '0',
      CCPROXY_ADMIN_OIDC_ISSUER_URL: issuer.url,
      CCPROXY_ADMIN_OIDC_CLIENT_ID: issuer.clientId,
      CCPROXY_ADMIN_OIDC_CLIENT_SECRET: issuer.clientSecret,
      CCPROXY_ADMIN_OIDC_REDIRECT_URL: `${adminUrl}/admin/auth/oidc/callback`,
      CCPROXY_ADMIN_OIDC_SCOPES: 'openid email profile groups',
      CCPROXY_ADMIN_OIDC_ROLES: 'platform=admin;devs=developer',
    },
    { readyTimeoutMs: 60_000 },
  );
  browser = await launchChromium();
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await ccproxy?.stop();
  await issuer?.close();
  await anthropic?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('self-service in Chromium against ccproxy local', () => {
  it('a developer signs in, issues a key that works, rotates it (old key dead within 1 s) and revokes it', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${adminUrl}/`);
    await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
    await page.waitForURL((url) => url.href.startsWith(issuer.url));
    await page.locator('input[name="login"]').fill('dev-sub');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((url) => url.href.startsWith(adminUrl));

    // Home is My keys: the linked user, the team admin's limits, nothing of anyone else.
    await page.getByText('Dev One (team-a/dev)').waitFor();
    await page.getByText(/up to 2 active keys \(you hold 0\); routing: PlanOnly, PlanWithFailover/).waitFor();
    expect(await page.getByRole('menuitem', { name: 'Users' }).count()).toBe(0);
    expect(await axe(page)).toEqual([]);

    await page.getByRole('button', { name: 'Issue a new key' }).click();
    await page.getByRole('dialog').getByText('This key is shown only now').waitFor();
    await page.screenshot({ path: join(screenshots, 'self-service-key-once.png') });
    expect(await axe(page)).toEqual([]);
    const first = await takeKey(page);
    expect(first).toMatch(/^ak_/);
    const row = page.locator('[data-testid^="my-key-dev-"]');
    await row.getByText('PlanOnly').waitFor();
    // The operator picks the key up from the Secret the admin wrote; then the proxy serves it.
    await until(first, 200, 10_000);
    expect(await ask(first)).toBe(200);
    await page.reload();
    await row.getByText('Ready').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(screenshots, 'self-service-my-keys.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS === '1')
      await page.screenshot({ path: join(docsScreenshots, 'self-service-my-keys.png'), fullPage: true });
    expect(await axe(page)).toEqual([]);

    await row.getByRole('button', { name: 'Rotate' }).click();
    const rotated = page.waitForResponse((response) => response.url().endsWith('/rotate'));
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate' }).click();
    expect((await rotated).status()).toBe(200);
    const second = await takeKey(page);
    expect(second).not.toBe(first);
    // The old key stops within a second of the rotation's answer; the new one works.
    const stoppedAfter = await until(first, 404, 1_000);
    console.info(`self-service: old key refused ${stoppedAfter.toFixed(0)} ms after the rotation answered`);
    expect(await ask(first)).toBe(404);
    await until(second, 200, 1_000);

    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row.getByText('Revoked').waitFor();
    await until(second, 404, 1_000);
    // The page at a phone's width and in dark mode, as every other page is checked.
    for (const [width, colorScheme] of [
      [375, 'light'],
      [375, 'dark'],
      [1280, 'dark'],
    ] as const) {
      await page.setViewportSize({ width, height: 800 });
      await page.emulateMedia({ colorScheme });
      // The theme switches with a transition: mid-way, colours are a blend nobody reads.
      await page.waitForTimeout(700);
      expect(await axe(page), `${width} ${colorScheme}`).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${width}`).toBeLessThanOrEqual(width);
    }
    expect(problems).toEqual([]);
    await context.close();
  });

  it('no key appears in the process log', () => {
    expect(seen).toHaveLength(2);
    const log = ccproxy.output.join('\n');
    for (const key of seen) {
      expect(log).not.toContain(key);
      expect(log).not.toContain(key.slice(3, 23));
    }
    expect(log).toContain('ccproxy local is running');
  });
});
