import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askThroughProxy, bedrockApiKey, startUiStack, type UiStack } from './ui-stack.ts';

/**
 * axe-core's own build, evaluated in the real page (no wrapper package between it and the DOM).
 * Through the DevTools protocol rather than a <script> tag: the page's CSP (no inline script)
 * stays on, as an administrator gets it.
 */
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string | null;
  nodes: number;
  help: string;
}

/**
 * Zero serious or critical axe violations on every page of the UI, light and dark, at 375 and
 * 1280 px. The pages are not listed here: they are discovered by following every in-app link
 * from the dashboard and the menu (react-admin renders one menu entry per <Resource>, and every
 * list links its create, edit and show pages), so a page another change adds is scanned too.
 */
describe('accessibility (axe-core) of every page', () => {
  let stack: UiStack;
  let token: string;

  beforeAll(async () => {
    stack = await startUiStack();
    token = (await stack.admin.auth()).authorization.replace('Bearer ', '');
    await seed(stack);
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
  });

  const scan = async (page: Page, label: string): Promise<Violation[]> => {
    // Let fades finish (MUI's are ≤ 225 ms): mid-fade a tooltip's colours are a blend with the
    // page (3.7:1 measured), not what anyone reads once it is shown (15:1).
    await page.waitForTimeout(300);
    await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
      interface AxeViolation {
        id: string;
        impact: string | null;
        help: string;
        nodes: Array<{ target: unknown[]; html: string }>;
      }
      return (await axe.run()).violations.map((violation) => ({
        id: violation.id,
        impact: violation.impact,
        help: violation.help,
        nodes: violation.nodes.length,
        targets: violation.nodes.slice(0, 3).map((node) => `${JSON.stringify(node.target)} ${node.html.slice(0, 160)}`),
      }));
    });
    const serious = violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
    for (const violation of serious)
      console.info(
        `axe ${label}: ${violation.impact} ${violation.id} ×${violation.nodes} ${violation.targets.join(' ')}`,
      );
    return serious;
  };

  /** Every page reached by in-app links from the dashboard, one per route pattern (ids stand for any id). */
  const crawl = async (page: Page, label: string) => {
    const found = new Map<string, Violation[]>();
    const headings = new Map<string, number>();
    const queue = ['#/'];
    const seen = new Set(['/']);
    while (queue.length > 0) {
      const hash = queue.shift() ?? '#/';
      await page.goto(`${stack.adminUrl}/${hash}`);
      await settle(page);
      found.set(routePattern(hash), await scan(page, `${label} ${hash}`));
      // The confirmation a page's Delete opens (it names what goes with the resource), then Cancel.
      const remove = page.getByRole('button', { name: 'Delete', exact: true }).first();
      if (await remove.isVisible()) {
        await remove.click();
        await page.getByRole('dialog').waitFor();
        await page.waitForTimeout(300);
        found.set(`${routePattern(hash)} (delete dialog)`, await scan(page, `${label} ${hash} delete dialog`));
        await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
        await page.getByRole('dialog').waitFor({ state: 'detached' });
      }
      // One heading names every page (axe's page-has-heading-one is only a best practice).
      headings.set(routePattern(hash), await page.locator('h1').count());
      const links = await inAppLinks(page);
      // On a phone the menu (the app's resource list) is a closed drawer: open it to read its links.
      const menu = page.getByRole('button', { name: 'Open menu' });
      if (await menu.isVisible()) {
        await menu.click();
        await page.waitForTimeout(400);
        links.push(...(await inAppLinks(page)));
        await page.keyboard.press('Escape');
        // Escape gives the focus back to the menu button, whose tooltip then fades in: scanned
        // mid-fade its colours are a blend with the page (3.7:1), not what anyone reads (15:1).
        await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      }
      for (const link of links) {
        if (link === null || seen.has(routePattern(link))) continue;
        seen.add(routePattern(link));
        queue.push(link);
      }
    }
    return { found, headings };
  };

  const combinations = [
    { colorScheme: 'light', width: 1280 },
    { colorScheme: 'dark', width: 1280 },
    { colorScheme: 'light', width: 375 },
    { colorScheme: 'dark', width: 375 },
  ] as const;

  it.each(combinations)(
    'no serious or critical violation: $colorScheme, $width px',
    async ({ colorScheme, width }) => {
      const label = `${colorScheme}/${width}`;
      const page = await stack.newPage({ colorScheme, width, height: 800 });
      // Signed out: the login page.
      await page.goto(`${stack.adminUrl}/#/login`);
      await page.locator('input[name="username"]').waitFor();
      const results = new Map([['/login', await scan(page, `${label} login`)]]);
      expect(await page.locator('h1').count()).toBe(1);
      await page.evaluate((session) => sessionStorage.setItem('ccproxy-admin-token', session), token);
      // The menu's links are the app's resource list; on a phone the menu is a drawer, so read them wide once.
      const { found, headings } = await crawl(page, label);
      for (const [pattern, violations] of found) results.set(pattern, violations);
      expect(Object.fromEntries(headings)).toEqual(Object.fromEntries([...headings.keys()].map((key) => [key, 1])));

      const pages = [...results.keys()].sort();
      console.info(`axe ${label}: ${pages.length} pages: ${pages.join(', ')}`);
      // The discovery reached every kind's list, create and edit page (a crawl that finds nothing proves nothing).
      for (const resource of ['users', 'access-keys', 'bedrock-keys'])
        for (const pattern of [`/${resource}`, `/${resource}/create`, `/${resource}/:id`])
          expect(pages, `${label} discovered ${pattern}`).toContain(pattern);
      const counts = Object.fromEntries(
        [...results].map(([pattern, violations]) => [
          pattern,
          violations.reduce((sum, violation) => sum + violation.nodes, 0),
        ]),
      );
      const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
      console.info(`axe ${label}: ${total} serious/critical nodes ${JSON.stringify(counts)}`);
      expect(counts).toEqual(Object.fromEntries(pages.map((pattern) => [pattern, 0])));
      expect(stack.problems).toEqual([]);
    },
    300_000,
  );
});

const inAppLinks = (page: Page) =>
  page.$$eval('a[href^="#/"]', (anchors) => anchors.map((anchor) => anchor.getAttribute('href')));

/** `#/users/team-a%2Ferin/show?x` → `/users/:id/show`: one scan per kind of page, not per record. */
function routePattern(hash: string): string {
  const path = hash.replace(/^#/, '').split('?', 1)[0] ?? '/';
  return path
    .split('/')
    .map((segment) => (segment.includes('%2F') || segment.includes('/') ? ':id' : segment))
    .join('/');
}

/** The page has drawn its data: its heading is there, no progress bar runs, the fonts are in. */
async function settle(page: Page): Promise<void> {
  await page.locator('h1').first().waitFor();
  await page.waitForFunction(
    () => document.querySelector('.MuiLinearProgress-root, .MuiCircularProgress-root') === null,
    undefined,
    {
      timeout: 10_000,
    },
  );
  await page.waitForTimeout(300);
}

/** One of each kind, and one request through the proxy so the dashboard draws its charts. */
async function seed(stack: UiStack): Promise<void> {
  const headers = await stack.admin.auth();
  const post = async (url: string, payload: object) => {
    const response = await stack.admin.app.inject({ method: 'POST', url: `/admin/api/${url}`, headers, payload });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ baseUrl?: string }>();
  };
  await post('users', { namespace: 'team-a', name: 'erin', displayName: 'Erin Lee' });
  const issued = await post('access-keys', {
    namespace: 'team-a',
    name: 'erin-laptop',
    user: 'erin',
    bedrock: { region: 'us-east-1', model: 'anthropic.claude-sonnet-4-5-v1:0' },
  });
  await post('bedrock-keys', {
    namespace: 'team-a',
    name: 'erin-bedrock',
    accessKey: 'erin-laptop',
    apiKey: bedrockApiKey,
  });
  // The operator reconciles the new resources into Postgres a moment later.
  for (let attempt = 0; (await askThroughProxy(String(issued.baseUrl))).status !== 200; attempt += 1) {
    if (attempt > 100) throw new Error('the seeded key never worked through the proxy');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
