import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { password } from './admin-fixture.ts';
import { askThroughProxy, bedrockApiKey, startUiStack, type UiStack } from './ui-stack.ts';

/**
 * The web UI as a new administrator meets it, in real Chromium against the real admin process
 * and proxy: the first visit paints the login at once (no redirect loop), sign-in by keyboard,
 * a key issued and used through the proxy, its usage on the dashboard; every page at a phone's
 * 375 px and a laptop's 1280 px with nothing overflowing; dark mode from the system setting.
 */
/**
 * A ceiling, not a speed goal (those live in `npm run bench`): it refuses main's 10–18 s blank
 * page, not a slow machine. The first visit of a cold Chromium painted in 1.1, 1.7 and 2.6 s in
 * three full runs on the 2-core machine (2026-12-08; the 2.6 s at a load average of 3.4, against
 * the 1 s budget this had then); 5 s, grown by the oversubscription when the machine runs more
 * than its cores can (the load average lags a burst by a minute). Every figure is printed.
 */
const paintBudgetMs = () => 5000 * Math.max(1, (loadavg()[0] ?? 0) / availableParallelism());

describe('admin web UI in Chromium', () => {
  let stack: UiStack;
  let page: Page;

  beforeAll(async () => {
    stack = await startUiStack();
    page = await stack.newPage();
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('paints the login on the first visit to / at once, without a redirect loop', async () => {
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => navigations.push(frame.url()));
    await page.goto(`${stack.adminUrl}/`);
    // Milliseconds from the navigation's start to the login form on screen, read in the page.
    const paintMs = Number(
      await (
        await page.waitForFunction(() => document.querySelector('input[name="username"]') !== null && performance.now())
      ).jsonValue(),
    );
    // A loop pushed history thousands of times (main: 368 navigations, 14 s blank).
    expect(await page.evaluate(() => history.length)).toBeLessThanOrEqual(3);
    expect(navigations.length).toBeLessThanOrEqual(4);
    console.info(`first visit: login painted after ${Math.round(paintMs)} ms (budget ${paintBudgetMs()} ms)`);
    expect(paintMs).toBeLessThan(paintBudgetMs());
    expect(await page.locator('h1').textContent()).toBe('claude-code-proxy admin');
    await stack.shot(page, 'login');
  });

  it('signs in by keyboard, issues a key used through the proxy, shows its usage on the dashboard', async () => {
    // By keyboard alone: the fields take Tab in order and Enter signs in.
    await page.locator('input[name="username"]').focus();
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('password');
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
    await page.getByText('Tokens over time by provider').waitFor();

    await page.goto(`${stack.adminUrl}/#/users/create`);
    await page.locator('input[name="namespace"]').fill('team-a');
    await page.locator('input[name="name"]').fill('erin');
    await page.locator('input[name="displayName"]').fill('Erin Lee');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: 'Issue key' }).click();
    await page.getByRole('button', { name: 'Save' }).click();
    const line = (await page.getByTestId('base-url-line').textContent()) ?? '';
    const baseUrl = line.replace('export ANTHROPIC_BASE_URL=', '');
    await page.getByLabel('I have copied it').check();
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByText('Erin Lee').first().waitFor();
    expect(await askThroughProxy(baseUrl)).toMatchObject({ status: 200 });
    await stack.admin.app.inject({
      method: 'POST',
      url: '/admin/api/bedrock-keys',
      headers: await stack.admin.auth(),
      payload: { namespace: 'team-a', name: 'erin-bedrock', accessKey: 'erin-laptop', apiKey: bedrockApiKey },
    });

    await expect
      .poll(
        async () =>
          (await stack.admin.db.query<{ n: string }>('SELECT count(*)::text AS n FROM usage_aggregates'))[0]?.n,
        { timeout: 10_000 },
      )
      .not.toBe('0');
    // The dashboard, loaded afresh with a session: painted (its heading and cards) within the same ceiling.
    await page.goto(`${stack.adminUrl}/#/`);
    // A fresh document load (the goto above only changed the hash): performance.now() counts from it.
    await page.reload();
    const paintMs = Number(
      await (
        await page.waitForFunction(
          () => document.body.innerText.includes('Tokens over time by provider') && performance.now(),
        )
      ).jsonValue(),
    );
    console.info(`dashboard painted after ${Math.round(paintMs)} ms (budget ${paintBudgetMs()} ms)`);
    expect(paintMs).toBeLessThan(paintBudgetMs());
    await expect.poll(async () => page.getByTestId('total-requests').textContent(), { timeout: 10_000 }).toBe('1');
    await page.locator('.recharts-surface').first().waitFor();
    await stack.shot(page, 'dashboard');
  });

  const pages = [
    ['dashboard', '#/', 'Tokens over time by provider'],
    ['users', '#/users', 'Erin Lee'],
    ['user-detail', '#/users/team-a%2Ferin/show', 'erin-laptop'],
    ['user-edit', '#/users/team-a%2Ferin', 'Display name'],
    ['access-keys', '#/access-keys', 'erin-laptop'],
    ['access-key-issue', '#/access-keys/create', 'Bedrock (failover)'],
    ['access-key-edit', '#/access-keys/team-a%2Ferin-laptop', 'Bedrock (failover)'],
    ['bedrock-keys', '#/bedrock-keys', 'erin-bedrock'],
    ['bedrock-key-create', '#/bedrock-keys/create', 'Bedrock API key'],
    ['bedrock-key-replace', '#/bedrock-keys/team-a%2Ferin-bedrock', 'New Bedrock API key'],
  ] as const;

  it.each([375, 1280])('shows every page at %i px wide with nothing overflowing', async (width) => {
    const narrow = await stack.newPage({ width, height: 800 });
    await narrow.goto(`${stack.adminUrl}/#/login`);
    await narrow.evaluate(
      (token) => sessionStorage.setItem('ccproxy-admin-token', token),
      (await stack.admin.auth()).authorization.replace('Bearer ', ''),
    );
    for (const [name, path, text] of pages) {
      await narrow.goto(`${stack.adminUrl}/${path}`);
      await narrow.getByText(text).first().waitFor();
      await narrow.waitForTimeout(200);
      const { scrollWidth, innerWidth } = await narrow.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      expect({ name, scrollWidth }).toEqual({ name, scrollWidth: innerWidth });
      // One heading names the page (main had none).
      expect({ name, h1: await narrow.locator('h1').count() }).toEqual({ name, h1: 1 });
      if (width === 375) await stack.shot(narrow, `mobile-${name}`);
    }
  });

  it('names on the dashboard what the operator ignored in the manifests folder, until it is fixed', async () => {
    const file = join(stack.admin.manifestsDir, 'team-x', 'hand.yaml');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(
      file,
      'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ghost, namespace: team-x }\nspec: { colour: blue }\n',
    );
    await stack.admin.operator.sync();
    await page.goto(`${stack.adminUrl}/#/`);
    await page.reload();
    const alert = page.getByTestId('ignored-manifests');
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/team-x\/hand\.yaml \(document 1\): .*colour/);
    await rm(file);
    await stack.admin.operator.sync();
    // Judged once the page has its answer (before it, no alert says nothing).
    const answered = page.waitForResponse((response) => response.url().endsWith('/admin/api/ignored-manifests'));
    await page.reload();
    expect(((await (await answered).json()) as { ignored: string[] }).ignored).toEqual([]);
    await page.getByText('Tokens over time by provider').waitFor();
    expect(await alert.count()).toBe(0);
  });

  it('serves the UI precompressed, content-hashed and cached, with ≤ 300 KB of initial JS gzipped', async () => {
    const index = await fetch(`${stack.adminUrl}/`, { headers: { 'accept-encoding': 'br' } });
    expect(index.headers.get('content-encoding')).toBe('br');
    expect(index.headers.get('cache-control')).toBe('no-store');
    const html = await index.text();
    // What the first paint needs: the entry script and the chunks it preloads; the rest loads on use.
    const initial = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+\.js)"/g)].map((match) => match[1] ?? '');
    expect(initial.length).toBeGreaterThan(0);
    let gzipped = 0;
    for (const asset of initial) {
      expect(asset).toMatch(/-[\w-]{8,}\.js$/);
      const response = await fetch(`${stack.adminUrl}/${asset}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers.get('content-encoding')).toBe('gzip');
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('vary')).toMatch(/accept-encoding/i);
      gzipped += Number(response.headers.get('content-length'));
    }
    expect(gzipped).toBeGreaterThan(0);
    expect(gzipped).toBeLessThanOrEqual(300 * 1024);
  });

  it('follows the system dark mode', async () => {
    const dark = await stack.newPage({ colorScheme: 'dark' });
    await dark.goto(`${stack.adminUrl}/#/login`);
    await dark.locator('input[name="username"]').waitFor();
    const background = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r = 255, g = 255, b = 255] = (background.match(/\d+/g) ?? []).map(Number);
    expect(r + g + b).toBeLessThan(3 * 80);
    await stack.shot(dark, 'dark-login');
    expect(stack.problems).toEqual([]);
  });
});
