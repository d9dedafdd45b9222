import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoleRules } from '@ccproxy/admin';
import { password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';
import { buildUi, launchChromium } from './chromium.ts';
import { freePort, startOidcIssuer, type TestIssuer } from './oidc-issuer.ts';

/**
 * Single sign-on in real Chromium: the admin's login page → the issuer's own login and consent
 * pages (oidc-provider on loopback) → back signed in, with what the role may do and nothing
 * more on screen, and the server refusing what the screen does not offer.
 */
const screenshots = fileURLToPath(new URL('../test-output/screenshots/', import.meta.url));
const docsScreenshots = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
let admin: LocalAdmin;
let issuer: TestIssuer;
let browser: Browser;
let adminUrl: string;

async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: join(docsScreenshots, `${name}.png`) });
}

/** A fresh browser profile signing in as `login` through the issuer's pages. */
async function signIn(login: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${adminUrl}/`);
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  // The issuer's pages, on the issuer's origin.
  await page.waitForURL((url) => url.href.startsWith(issuer.url));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((url) => url.href.startsWith(adminUrl));
  return page;
}

beforeAll(async () => {
  await buildUi();
  await mkdir(screenshots, { recursive: true });
  const port = await freePort();
  adminUrl = `http://127.0.0.1:${port}`;
  issuer = await startOidcIssuer(`${adminUrl}/admin/auth/oidc/callback`, {
    root: { email: 'root@example.com', name: 'Root Admin', groups: ['platform'] },
    ann: { email: 'ann@example.com', name: 'Ann Team', groups: ['team-a-admins'] },
    vic: { email: 'vic@example.com', name: 'Vic Viewer', groups: ['auditors'] },
  });
  admin = await startLocalAdmin({
    loginAttempts: 1000,
    oidc: {
      issuerUrl: issuer.url,
      clientId: issuer.clientId,
      clientSecret: issuer.clientSecret,
      redirectUrl: `${adminUrl}/admin/auth/oidc/callback`,
      scopes: 'openid email profile groups',
      groupsClaim: 'groups',
      roles: parseRoleRules('platform=admin;team-a-admins=team-admin:team-a;auditors=viewer').rules,
    },
  });
  await admin.app.listen({ port, host: '127.0.0.1' });
  const headers = await admin.auth();
  for (const [namespace, name, displayName] of [
    ['team-a', 'alice', 'Alice Adams'],
    ['team-b', 'bob', 'Bob Brown'],
  ])
    await admin.app.inject({
      method: 'POST',
      url: '/admin/api/users',
      headers,
      payload: { namespace, name, displayName },
    });
  browser = await launchChromium();
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await issuer?.close();
});

describe('admin single sign-on in Chromium', () => {
  it('a team admin signs in at the issuer, sees who is signed in and only its namespace, and is refused elsewhere', async () => {
    const page = await signIn('ann');
    // Who is signed in, with the role and its namespaces, in the app bar.
    await page.getByText('Ann Team (team-admin: team-a)').waitFor();
    await page.goto(`${adminUrl}/#/users`);
    await page.getByText('Alice Adams').waitFor();
    expect(await page.getByText('Bob Brown').count()).toBe(0);
    await shot(page, 'sso-team-admin-users');
    // Another team's user by its address: the server refuses (403), so nothing of it is shown.
    const refused = page.waitForResponse((response) => response.url().includes('/admin/api/users/team-b%2Fbob'));
    await page.goto(`${adminUrl}/#/users/team-b%2Fbob/show`);
    const answer = await refused;
    expect(answer.status()).toBe(403);
    expect(((await answer.json()) as { message: string }).message).toMatch(
      /may not read resources in namespace team-b/,
    );
    await page.waitForTimeout(1000);
    expect(await page.getByText('Bob Brown').count()).toBe(0);
    // The session is the HttpOnly cookie: the page's script cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain('ccproxy-session');
    // Changing its own team works from the UI.
    await page.goto(`${adminUrl}/#/users/create`);
    await page.locator('input[name="namespace"]').fill('team-a');
    await page.locator('input[name="name"]').fill('carol');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: 'Issue key' }).waitFor();
    await page.goto(`${adminUrl}/#/users/create`);
    await page.locator('input[name="namespace"]').fill('team-b');
    await page.locator('input[name="name"]').fill('mallory');
    await page.getByRole('button', { name: 'Save' }).click();
    await page
      .getByText(/may not change resources in namespace team-b/)
      .first()
      .waitFor();
    expect(
      (await admin.db.query(`SELECT 1 FROM admin_audit WHERE name = 'mallory' AND outcome = 'denied'`)).length,
    ).toBe(1);
    await page.context().close();
  });

  it('a viewer sees everything and no control to change anything', async () => {
    const page = await signIn('vic');
    await page.getByText('Vic Viewer (viewer)').waitFor();
    await page.goto(`${adminUrl}/#/users`);
    await page.getByText('Bob Brown').waitFor();
    await page.getByText('Alice Adams').waitFor();
    for (const name of ['Create', 'Edit', 'Delete'])
      expect.soft(await page.getByRole('button', { name }).or(page.getByRole('link', { name })).count(), name).toBe(0);
    await page.goto(`${adminUrl}/#/users/team-a%2Falice/show`);
    await page.getByText('Alice Adams').first().waitFor();
    expect(await page.getByRole('link', { name: 'Issue key' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Edit' }).count()).toBe(0);
    await shot(page, 'sso-viewer-users');
    await page.context().close();
  });

  it('an admin signs in, changes things, and the Audit page shows who did what; break-glass still signs in', async () => {
    const page = await signIn('root');
    await page.getByText('Root Admin (admin)').waitFor();
    await page.goto(`${adminUrl}/#/users`);
    await page.getByRole('link', { name: 'Create' }).waitFor();
    await page.goto(`${adminUrl}/#/audit`);
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    // ann's sign-in and her create in team-a, by her email; vic's and ann's refusals.
    await page.getByText('ann@example.com (oidc)').first().waitFor();
    await page.getByText('ProxyUser team-a/carol').waitFor();
    await page.getByText('denied').first().waitFor();
    await shot(page, 'audit');
    await page.context().close();

    const glass = await (await browser.newContext()).newPage();
    await glass.goto(`${adminUrl}/#/login`);
    await glass.getByText('break-glass local login').waitFor();
    await shot(glass, 'sso-login');
    await glass.locator('input[name="username"]').fill('admin');
    await glass.locator('input[name="password"]').fill(password);
    await glass.keyboard.press('Enter');
    await glass.getByText('admin (admin)').waitFor();
    await glass.context().close();
  });
});
