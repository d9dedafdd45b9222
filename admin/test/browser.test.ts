import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import {
  hashKey as proxyHashKey,
  openTestDatabase,
  startProxy,
  type RunningProxy,
} from '../../proxy/test/proxy-fixture.ts';
import { buildUi, launchChromium } from './chromium.ts';
import { password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

const screenshots = fileURLToPath(new URL('../test-output/screenshots/', import.meta.url));

/**
 * The web UI in real Chromium against the real admin process (local mode: manifests folder,
 * local operator, Postgres) and the real proxy in front of the Anthropic test server: log in,
 * create a user, issue a key, use it through the proxy, see the usage, revoke it.
 */
describe('admin web UI in Chromium', () => {
  let browser: Browser;
  let page: Page;
  let admin: LocalAdmin;
  let proxy: RunningProxy;
  let anthropic: AnthropicTestServer;
  let adminUrl: string;
  const problems: string[] = [];

  beforeAll(async () => {
    await buildUi();
    await mkdir(screenshots, { recursive: true });
    const db = await openTestDatabase();
    anthropic = await startAnthropicServer();
    proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: anthropic.url },
      { spoolDir: await mkdtemp(join(tmpdir(), 'ccproxy-spool-')) },
    );
    admin = await startLocalAdmin({ publicUrl: proxy.url }, { db, hashKey: proxyHashKey });
    adminUrl = await admin.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await admin?.close();
    await proxy?.close();
    await anthropic?.close();
  });

  const shot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });

  it('logs in, creates a user, issues a key shown once, serves it through the proxy, shows usage, revokes it', async () => {
    await page.goto(`${adminUrl}/`);
    // By keyboard alone (at a laptop-sized viewport): the fields take Tab in order and Enter signs in.
    await page.locator('input[name="username"]').focus();
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('password');
    await page.keyboard.type(password);
    await shot('login');
    await page.keyboard.press('Enter');
    await page.getByText('Tokens over time by provider').waitFor();

    await page.goto(`${adminUrl}/#/users/create`);
    await page.locator('input[name="namespace"]').fill('team-a');
    await page.locator('input[name="name"]').fill('erin');
    await page.locator('input[name="displayName"]').fill('Erin Lee');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Erin Lee').first().waitFor();

    await page.getByRole('button', { name: 'Issue key' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Issue' }).click();
    const line = (await page.getByTestId('base-url-line').textContent()) ?? '';
    expect(line).toMatch(new RegExp(`^export ANTHROPIC_BASE_URL=${proxy.url}/ak/ak_[\\w-]{43}$`));
    const baseUrl = line.replace('export ANTHROPIC_BASE_URL=', '');
    const key = baseUrl.slice(baseUrl.lastIndexOf('/') + 1);
    await shot('key-once');
    await page.getByRole('button', { name: 'Done' }).click();
    // Gone once closed: nothing on the page (or in what the API sends it) holds the key again.
    await page.getByText(key.slice(0, 10), { exact: true }).waitFor();
    expect(await page.content()).not.toContain(key);
    await shot('user-detail');

    // What the developer does with the pasted line: Claude Code's request through the proxy.
    const ask = await fetch(`${baseUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-dev', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-sonnet-4-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hello' }],
      }),
    });
    expect(ask.status).toBe(200);
    await ask.arrayBuffer();
    expect(anthropic.requests).toHaveLength(1);

    // The usage reaches the aggregates off the request path; the dashboard shows it.
    await expect
      .poll(
        async () => (await admin.db.query<{ n: string }>('SELECT count(*)::text AS n FROM usage_aggregates'))[0]?.n,
        { timeout: 10_000 },
      )
      .not.toBe('0');
    await page.goto(`${adminUrl}/#/`);
    await expect.poll(async () => page.getByTestId('total-requests').textContent(), { timeout: 10_000 }).toBe('1');
    await page.locator('.recharts-surface').first().waitFor();
    await shot('dashboard');

    await page.goto(`${adminUrl}/#/users`);
    await page.getByText('Erin Lee').waitFor();
    await shot('users');

    // Register a Bedrock key for the new access key: a Secret and a BedrockKey the operator encrypts.
    await page.goto(`${adminUrl}/#/bedrock-keys/create`);
    await page.locator('input[name="name"]').fill('erin-bedrock');
    await page.getByRole('combobox', { name: 'Access key' }).fill('erin');
    await page.getByRole('option', { name: 'team-a/erin-laptop' }).click();
    await page.locator('input[name="apiKey"]').fill('bedrock-api-key-from-the-ui-0123');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('cell', { name: 'erin-bedrock' }).waitFor();
    await expect
      .poll(async () => (await admin.db.query('SELECT 1 FROM bedrock_keys WHERE name = $1', ['erin-bedrock'])).length, {
        timeout: 5000,
      })
      .toBe(1);
    await page.reload();
    await page.getByText('Ready', { exact: true }).first().waitFor();
    expect(await page.content()).not.toContain('bedrock-api-key-from-the-ui-0123');
    await shot('bedrock-keys');

    await page.goto(`${adminUrl}/#/access-keys`);
    await page.getByRole('button', { name: 'Revoke' }).first().click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('Revoked', { exact: true }).first().waitFor();
    await shot('access-keys');
    await expect
      .poll(
        async () =>
          (
            await fetch(`${baseUrl}/v1/messages`, {
              method: 'POST',
              body: '{}',
              headers: { 'content-type': 'application/json' },
            })
          ).status,
        { timeout: 5000 },
      )
      .toBe(404);

    expect(problems).toEqual([]);
  });
});
