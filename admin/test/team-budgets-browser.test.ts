import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askThroughProxy, startUiStack, type UiStack } from './ui-stack.ts';

/**
 * Team budgets from the UI in real Chromium, against the real admin process (local mode: the
 * manifests folder and the local operator), the proxy enforcing budgets on the same Postgres and
 * the Anthropic test server: a TeamBudget made in the form refuses the team's keys once spent,
 * the page shows the spend against it, an edit lifts it; users and keys show theirs. Makes the
 * README's screenshot of the page (UPDATE_SCREENSHOTS=1).
 */
describe('team budgets in the admin UI (Chromium)', () => {
  let stack: UiStack;
  let page: Page;

  beforeAll(async () => {
    stack = await startUiStack({ governor: true });
    page = await stack.newPage({ width: 1280, height: 720 });
    await stack.logIn(page);
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(async (context) => {
    if (context.task.result?.state === 'fail') await stack.shot(page, `failed-${context.task.name.slice(0, 40)}`);
  });

  const api: UiStack['api'] = (...args) => stack.api(...args);

  it("a team budget made in the form is enforced on the team's keys and its page shows the spend; an edit lifts it", async () => {
    // A user of the team with a monthly budget of their own, and their key.
    expect(
      (await api('POST', 'users', { namespace: 'team-d', name: 'gail', budget: { monthly: { tokens: 100_000 } } }))
        .status,
    ).toBe(201);
    const issued = await api('POST', 'access-keys', { namespace: 'team-d', name: 'gail-laptop', user: 'gail' });
    expect(issued.status).toBe(201);
    const baseUrl = String(issued.json.baseUrl);
    await expect.poll(async () => (await askThroughProxy(baseUrl)).status, { timeout: 10_000 }).toBe(200);

    await page.goto(`${stack.adminUrl}/#/team-budgets/create`);
    await page.locator('input[name="namespace"]').fill('team-d');
    await page.locator('textarea[name="description"]').fill('Developer tools team');
    await page.locator('input[name="budget.daily.tokens"]').fill('150');
    await page.locator('input[name="budget.softLimitPercent"]').fill('50');
    await page.getByRole('button', { name: 'Save' }).click();
    // The redirect to the record's page says the write is done (a reload before it would cancel it
    // and stay on the form; seen in CI).
    await page.waitForURL(/\/show$/);
    await page.getByText('Developer tools team').waitFor();
    await stack.admin.operator.sync();

    // 37 tokens a request: the team's 150 are spent on the 5th at most (the proxy learns the new
    // budget on the keys' NOTIFY, a moment after the operator wrote it); then 402.
    let refused: { status: number; error?: string | undefined } | undefined;
    await expect
      .poll(async () => (refused = await askThroughProxy(baseUrl)).status, { timeout: 10_000, interval: 50 })
      .toBe(402);
    expect(refused?.error).toContain('The daily budget of team team-d is spent');
    await stack.admin.operator.sync();

    await page.goto(`${stack.adminUrl}/#/team-budgets`);
    const row = page.getByRole('row', { name: /team-d/ });
    await row.getByText('Exhausted').waitFor();
    await expect
      .poll(() => row.getByTestId('budget-today').innerText(), { timeout: 10_000 })
      .toMatch(/Today: \d+ of 150 tokens \(\d{3}%\)/);
    await expect.poll(() => row.getByRole('progressbar').getAttribute('aria-label')).toMatch(/Today budget used: \d+%/);
    await stack.shot(page, 'team-budgets');

    // The user's page: their own budget, and their key's row (no budget of its own).
    await page.goto(`${stack.adminUrl}/#/users/${encodeURIComponent('team-d/gail')}/show`);
    await expect
      .poll(() => page.getByTestId('budget-this-month').first().innerText(), { timeout: 10_000 })
      .toMatch(/This month: \d+ of 100,000 tokens \(0%\)/);
    await page
      .getByRole('row', { name: /gail-laptop/ })
      .getByText('None')
      .waitFor();

    // Edit: a larger cap lets the team's keys through again.
    await page.goto(`${stack.adminUrl}/#/team-budgets/${encodeURIComponent('team-d/team')}`);
    const cap = page.locator('input[name="budget.daily.tokens"]');
    // Filled only once the record is in the form (a fill before it loads is overwritten, and Save stays disabled).
    await expect.poll(() => cap.inputValue(), { timeout: 10_000 }).toBe('150');
    await cap.fill('100000');
    await page.getByRole('button', { name: 'Save' }).click();
    // The redirect to the record's page says the write is done (a reload before it would cancel it
    // and stay on the form; seen in CI).
    await page.waitForURL(/\/show$/);
    await page.getByText('Developer tools team').waitFor();
    await stack.admin.operator.sync();
    await expect.poll(async () => (await askThroughProxy(baseUrl)).status, { timeout: 10_000 }).toBe(200);
    await stack.admin.operator.sync();
    // The status is the operator's last reconcile: reloaded until it shows the lifted budget.
    await expect
      .poll(
        async () => {
          await stack.admin.operator.sync();
          await page.reload();
          // Waits for the page to load (slow on a loaded 2-core machine) before reading the state.
          const chip = page.getByTestId('budget-state');
          return chip.waitFor({ timeout: 15_000 }).then(
            () => chip.innerText(),
            () => 'not shown',
          );
        },
        { timeout: 60_000, interval: 200 },
      )
      .toBe('Ok');
    expect(stack.problems).toEqual([]);
  }, 180_000);
});
