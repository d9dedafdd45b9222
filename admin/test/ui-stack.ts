import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import {
  hashKey as proxyHashKey,
  openTestDatabase,
  startProxy,
  wrapper,
  type RunningProxy,
} from '../../proxy/test/proxy-fixture.ts';
import { buildUi, launchChromium } from './chromium.ts';
import { password, startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

export const bedrockApiKey = 'bedrock-api-key-from-the-ui-0123';
const testOutput = fileURLToPath(new URL('../test-output/screenshots/', import.meta.url));
/** The README's screenshots: rewritten only when asked (UPDATE_SCREENSHOTS=1), then committed. */
const docsScreenshots = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

export interface UiStack {
  admin: LocalAdmin;
  proxy: RunningProxy;
  anthropic: AnthropicTestServer;
  bedrock: BedrockTestServer;
  browser: Browser;
  adminUrl: string;
  /** Console errors and page errors seen by any page of `newPage`. */
  problems: string[];
  newPage(options?: { width?: number; height?: number; colorScheme?: 'light' | 'dark' }): Promise<Page>;
  /** The admin API as an admin (one session), for the steps a test does not take through the UI. */
  api(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: object,
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  logIn(page: Page): Promise<void>;
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Everything the UI drives, for real: the built UI served by the admin process (local mode:
 * manifests folder, local operator, Postgres), the proxy sharing that database, key hasher and
 * key wrapper (so the keys and Bedrock keys the UI makes are the ones the proxy serves), the
 * Anthropic and Bedrock test servers behind it, and Debian's Chromium. `governor`: the proxy
 * enforces budgets and rate limits (off by default, as the flows that are not about them expect).
 */
export async function startUiStack(options: { governor?: boolean } = {}): Promise<UiStack> {
  await buildUi();
  await mkdir(testOutput, { recursive: true });
  const db = await openTestDatabase();
  const anthropic = await startAnthropicServer();
  const bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
  const proxy = await startProxy(
    db,
    { ANTHROPIC_UPSTREAM_URL: anthropic.url, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url, AWS_REGION: 'us-east-1' },
    { spoolDir: await mkdtemp(join(tmpdir(), 'ccproxy-spool-')), governor: options.governor === true },
  );
  const admin = await startLocalAdmin({ publicUrl: proxy.url }, { db, hashKey: proxyHashKey, wrapper });
  const adminUrl = await admin.app.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];
  let session: { authorization: string } | undefined;
  return {
    admin,
    proxy,
    anthropic,
    bedrock,
    browser,
    adminUrl,
    problems,
    async newPage({ width = 1280, height = 800, colorScheme = 'light' } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, colorScheme });
      contexts.push(context);
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      return page;
    },
    async api(method, url, payload) {
      session ??= await admin.auth();
      const response = await admin.app.inject({
        method,
        url: `/admin/api/${url}`,
        headers: session,
        ...(payload === undefined ? {} : { payload }),
      });
      return { status: response.statusCode, json: response.json() as Record<string, unknown> };
    },
    async logIn(page) {
      await page.goto(`${adminUrl}/#/login`);
      await page.locator('input[name="username"]').fill('admin');
      await page.locator('input[name="password"]').fill(password);
      await page.keyboard.press('Enter');
      await page.getByText('Tokens over time by provider').waitFor();
    },
    async shot(page, name) {
      await page.screenshot({ path: join(testOutput, `${name}.png`), fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS === '1' && !name.startsWith('failed-')) {
        await mkdir(docsScreenshots, { recursive: true });
        await page.screenshot({ path: join(docsScreenshots, `${name}.png`), fullPage: true });
      }
    },
    async close() {
      await Promise.all(contexts.map((context) => context.close()));
      await browser.close();
      await admin.close();
      await proxy.close();
      await anthropic.close();
      await bedrock.close();
      await db.close();
    },
  };
}

/** What Claude Code sends through the pasted ANTHROPIC_BASE_URL. */
export async function askThroughProxy(baseUrl: string, model = 'claude-sonnet-4-5') {
  const response = await fetch(`${baseUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-dev', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  });
  const body = (await response.json()) as { content?: Array<{ text?: string }>; error?: { message?: string } };
  return { status: response.status, text: body.content?.[0]?.text, error: body.error?.message };
}
