import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUi, launchChromium } from '../../admin/test/chromium.ts';
import { password, startLocalAdmin, type LocalAdmin } from '../../admin/test/admin-fixture.ts';
import { openTestDatabase, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import type { Database } from '@ccproxy/core';

/**
 * Item 12: every admin answer (UI page, hashed asset, API list, key issue, errors, 401, 404,
 * login, OpenAPI document) carries the security headers; API answers are never cached; the UI
 * runs in real Chromium with the CSP enforced and not one violation. The proxy's own routes
 * (health, readiness, metrics, 404) say nosniff and no-store.
 */
let admin: LocalAdmin;
let url: string;
let authorization: string;

beforeAll(async () => {
  await buildUi();
  admin = await startLocalAdmin();
  url = await admin.app.listen({ port: 0, host: '127.0.0.1' });
  authorization = (await admin.auth()).authorization;
}, 300_000);
afterAll(async () => admin?.close());

function expectSecurityHeaders(headers: Headers, what: string): void {
  const csp = headers.get('content-security-policy') ?? '';
  expect(csp, what).toContain("script-src 'self'");
  expect(csp, what).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  expect(csp, what).toContain("default-src 'self'");
  expect(csp, what).toContain("frame-ancestors 'none'");
  expect(csp, what).toContain("object-src 'none'");
  expect(headers.get('x-frame-options'), what).toBe('DENY');
  expect(headers.get('x-content-type-options'), what).toBe('nosniff');
  expect(headers.get('referrer-policy'), what).toBe('no-referrer');
  expect(headers.get('cross-origin-opener-policy'), what).toBe('same-origin');
  expect(headers.get('strict-transport-security'), what).toMatch(/^max-age=31536000/);
}

describe('12: security headers on every kind of admin answer', () => {
  it('UI, assets, API, key issue, errors, 401, 404, login and the document', async () => {
    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
    const index = await get('/');
    const html = await index.text();
    const script = /<script[^>]+src="\.?(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, html).toBeDefined();
    // The built page itself has no inline script or style element (what the CSP would block).
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style/);
    const json = { 'content-type': 'application/json', authorization };
    const answers: Array<[string, Response, number, boolean]> = [
      ['UI index', index, 200, false],
      ['index.html', await get('/index.html'), 200, false],
      ['JS asset', await get(script as string), 200, true],
      ['API list', await get('/admin/api/users', { authorization }), 200, false],
      [
        'user create',
        await fetch(`${url}/admin/api/users`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ namespace: 'team-a', name: 'hdr' }),
        }),
        201,
        false,
      ],
      [
        'key issue (carries a key)',
        await fetch(`${url}/admin/api/access-keys`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ namespace: 'team-a', name: 'hdr-key', user: 'hdr' }),
        }),
        201,
        false,
      ],
      [
        'key rotate (carries a key)',
        await fetch(`${url}/admin/api/access-keys/team-a%2Fhdr-key/rotate`, {
          method: 'POST',
          headers: { authorization },
        }),
        200,
        false,
      ],
      ['validation error', await get('/admin/api/users?_start=-1', { authorization }), 400, false],
      [
        '415',
        await fetch(`${url}/admin/api/users`, { method: 'POST', headers: { authorization }, body: 'x' }),
        415,
        false,
      ],
      ['401', await get('/admin/api/users'), 401, false],
      ['API 404', await get('/admin/api/nothing-here', { authorization }), 404, false],
      ['UI 404', await get('/no-such-file.js'), 404, false],
      ['missing asset 404', await get('/assets/index-ABCDEFGH12.js'), 404, false],
      [
        'login',
        await fetch(`${url}/admin/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password }),
        }),
        200,
        false,
      ],
      [
        'failed login',
        await fetch(`${url}/admin/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password: 'wrong' }),
        }),
        401,
        false,
      ],
      ['OpenAPI document', await get('/admin/openapi.json'), 200, false],
      ['health', await get('/healthz'), 200, false],
    ];
    for (const [what, response, status, cacheable] of answers) {
      expect(response.status, what).toBe(status);
      expectSecurityHeaders(response.headers, what);
      expect(response.headers.get('cache-control'), what).toBe(
        cacheable ? 'public, max-age=31536000, immutable' : 'no-store',
      );
    }
  });
});

describe('12: the UI in Chromium with the CSP enforced', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => browser?.close());

  it('renders login, dashboard, lists and forms without a single CSP violation', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content Security Policy/i.test(message.text()))
        problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    // Playwright's init scripts bypass the page's CSP; this one records what the CSP blocked.
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        const list = ((window as unknown as { cspViolations?: string[] }).cspViolations ??= []);
        list.push(`${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    const response = await page.goto(`${url}/`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('input[name="username"]').fill('admin');
    await page.locator('input[name="password"]').fill(password);
    await page.keyboard.press('Enter');
    await page.getByText('Tokens over time by provider').waitFor();
    await page.goto(`${url}/#/users/create`);
    await page.locator('input[name="namespace"]').fill('team-a');
    await page.locator('input[name="name"]').fill('csp-user');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.goto(`${url}/#/users`);
    await page.getByText('csp-user').first().waitFor();
    // Delete through react-admin's data provider, which sends DELETE as text/plain (item 11).
    await page.goto(`${url}/#/users/${encodeURIComponent('team-a/csp-user')}`);
    await page.getByRole('button', { name: 'Delete' }).click();
    // The confirmation dialog names what goes with the user; its own Delete button confirms.
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect
      .poll(
        async () => (await fetch(`${url}/admin/api/users/team-a%2Fcsp-user`, { headers: { authorization } })).status,
      )
      .toBe(404);
    await page.goto(`${url}/#/access-keys`);
    await page.goto(`${url}/#/bedrock-keys`);
    await page.waitForLoadState('networkidle');
    // MUI's emotion styles applied (inline <style> elements allowed by style-src).
    expect(await page.locator('style[data-emotion]').count()).toBeGreaterThan(0);
    const violations = await page.evaluate(
      () => (window as unknown as { cspViolations?: string[] }).cspViolations ?? [],
    );
    expect(violations).toEqual([]);
    expect(problems).toEqual([]);
  }, 120_000);
});

describe('12: the proxy own routes', () => {
  let db: Database;
  let proxy: RunningProxy;
  beforeAll(async () => {
    db = await openTestDatabase();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: 'http://127.0.0.1:9' });
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    await db?.close();
  });

  it('health, readiness, metrics and 404s say nosniff and no-store', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/nothing', '/v1/messages']) {
      const response = await fetch(`${proxy.url}${path}`);
      await response.arrayBuffer();
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('cache-control'), path).toBe('no-store');
    }
    // A framework-level refusal (a malformed URL never reaches the routes) too.
    const bad = await fetch(`${proxy.url}/%`);
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.headers.get('x-content-type-options')).toBe('nosniff');
    expect(bad.headers.get('cache-control')).toBe('no-store');
  });
});
