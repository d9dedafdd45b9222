import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildUi, launchChromium } from './chromium.ts';
import { password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * The Sessions page in real Chromium, against the real admin process (local mode, Postgres): it
 * lists the active sessions, marks the browser's own, and "End session" on another ends that one
 * (its next request is a 401) and leaves the browser's.
 */
describe('the Sessions page (Chromium)', () => {
  let admin: LocalAdmin;
  let browser: Browser;
  let page: Page;
  let adminUrl: string;
  const problems: string[] = [];

  beforeAll(async () => {
    await buildUi();
    admin = await startLocalAdmin();
    adminUrl = await admin.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`${adminUrl}/#/login`);
    await page.locator('input[name="username"]').fill('admin');
    await page.locator('input[name="password"]').fill(password);
    await page.keyboard.press('Enter');
    await page.getByText('Tokens over time by provider').waitFor();
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await admin?.close();
  });
  afterEach(async (context) => {
    if (context.task.result?.state === 'fail')
      await page.screenshot({ path: `/tmp/failed-sessions-${Date.now()}.png`, fullPage: true });
  });

  it('lists the sessions and ends another one; the browser’s own keeps working', async () => {
    const other = await admin.auth();
    const use = async () =>
      (await admin.app.inject({ method: 'GET', url: '/admin/auth/session', headers: other })).statusCode;
    expect(await use()).toBe(200);
    await page.getByRole('menuitem', { name: 'Sessions' }).click();
    await page.waitForURL(/#\/sessions/);
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    await page.getByText('this session').waitFor();
    const notMine = rows.filter({ hasNotText: 'this session' });
    await notMine.getByRole('button', { name: 'End session' }).click();
    await page.getByText('Session of admin (break-glass) ended').waitFor();
    expect(await use()).toBe(401);
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => rows.filter({ hasText: 'this session' }).count()).toBe(1);
    expect(problems).toEqual([]);
  });
});
