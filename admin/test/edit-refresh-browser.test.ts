import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startUiStack, type UiStack } from './ui-stack.ts';

/**
 * An edit form stays what the admin typed while the record is fetched again underneath it (the
 * list's copy first, then the fresh one; on the app bar's refresh; after the operator wrote status).
 * Seen in CI: react-admin reset the form to each new copy, so a value typed a moment after the
 * page opened was replaced by the stored one and Save stayed disabled. Each case types into one
 * field, has another field changed by someone else, makes the page fetch again, and checks that
 * the typed value stays, the other field follows the fresh record, and Save writes both.
 */
describe('edit forms keep what the admin typed across a refetch (Chromium)', () => {
  let stack: UiStack;
  let page: Page;
  const api: UiStack['api'] = (...args) => stack.api(...args);
  /** Changes the record as another admin would: a PUT with the current resourceVersion. */
  const changeElsewhere = async (path: string, fields: object) => {
    const current = await api('GET', path);
    const changed = await api('PUT', path, { resourceVersion: current.json.resourceVersion, ...fields });
    expect(changed.status, JSON.stringify(changed.json)).toBe(200);
  };
  /**
   * Fetches the record again the way the page does when it opens on the list's copy and the fresh
   * one arrives (the race seen in CI): the app bar's refresh, which refetches every query.
   */
  const refetch = async (target: Page) => {
    // The app bar hides while the page is scrolled down (typing into a low field scrolls it).
    await target.evaluate(() => window.scrollTo(0, 0));
    await target.getByRole('button', { name: 'Refresh', exact: true }).first().click({ timeout: 2_000 });
  };

  beforeAll(async () => {
    stack = await startUiStack();
    page = await stack.newPage();
    await stack.logIn(page);
    const created = [
      await api('POST', 'users', { namespace: 'team-r', name: 'rita', displayName: 'Rita', description: 'first' }),
      await api('POST', 'access-keys', { namespace: 'team-r', name: 'rita-key', user: 'rita' }),
      await api('POST', 'team-budgets', {
        namespace: 'team-r',
        description: 'first',
        budget: { daily: { tokens: 150 } },
      }),
    ];
    for (const { status, json } of created) expect(status, JSON.stringify(json)).toBe(201);
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(async (context) => {
    if (context.task.result?.state === 'fail') await stack.shot(page, `failed-${context.task.name.slice(0, 40)}`);
  });

  const cases = [
    {
      name: 'user',
      path: `users/${encodeURIComponent('team-r/rita')}`,
      route: `#/users/${encodeURIComponent('team-r/rita')}`,
      typed: { input: 'displayName', loaded: 'Rita', value: 'Rita Typed', saved: { displayName: 'Rita Typed' } },
      elsewhere: { fields: { description: 'changed elsewhere' }, input: 'description', shows: 'changed elsewhere' },
    },
    {
      name: 'team budget',
      path: `team-budgets/${encodeURIComponent('team-r/team')}`,
      route: `#/team-budgets/${encodeURIComponent('team-r/team')}`,
      typed: {
        input: 'budget.daily.tokens',
        loaded: '150',
        value: '100000',
        saved: { budget: { daily: { tokens: 100000 } } },
      },
      elsewhere: { fields: { description: 'changed elsewhere' }, input: 'description', shows: 'changed elsewhere' },
    },
    {
      name: 'access key',
      path: `access-keys/${encodeURIComponent('team-r/rita-key')}`,
      route: `#/access-keys/${encodeURIComponent('team-r/rita-key')}`,
      typed: {
        input: 'rateLimits.requestsPerMinute',
        loaded: '',
        value: '77',
        saved: { rateLimits: { requestsPerMinute: 77 } },
      },
      elsewhere: { fields: { revoked: true }, input: 'revoked', shows: 'on' },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: the typed field stays, the other follows the fresh record, and Save writes both`, async () => {
      await page.goto(`${stack.adminUrl}/${c.route}`);
      const typed = page.locator(`input[name="${c.typed.input}"]`);
      const other = page.locator(`[name="${c.elsewhere.input}"]`);
      // The page shows a record (the list's or the fetched copy; either may be first).
      await page.getByRole('button', { name: 'Save' }).waitFor();
      await expect.poll(() => typed.inputValue(), { timeout: 10_000 }).toBe(c.typed.loaded);
      await typed.fill(c.typed.value);

      await changeElsewhere(c.path, c.elsewhere.fields);
      await expect
        .poll(
          async () => {
            await refetch(page);
            return c.elsewhere.input === 'revoked' ? ((await other.isChecked()) ? 'on' : 'off') : other.inputValue();
          },
          { timeout: 10_000, interval: 250 },
        )
        .toBe(c.elsewhere.shows);
      // Fetched again, and what the admin typed is still there, Save still enabled.
      expect(await typed.inputValue()).toBe(c.typed.value);
      expect(await page.getByTestId('changed-elsewhere').count()).toBe(0);
      await page.getByRole('button', { name: 'Save' }).click();
      // Saved once the page has left the form (the next case's navigation must not race that redirect).
      await page.waitForURL((url) => url.hash !== c.route);
      await expect
        .poll(async () => (await api('GET', c.path)).json, { timeout: 10_000 })
        .toMatchObject({
          ...c.typed.saved,
          ...c.elsewhere.fields,
        });
      expect(stack.problems).toEqual([]);
    });
  }
  it('a field changed here and elsewhere too is named before Save replaces it', async () => {
    const path = `users/${encodeURIComponent('team-r/rita')}`;
    const route = `#/users/${encodeURIComponent('team-r/rita')}`;
    // After the cases above: its description is theirs by now.
    await page.goto(`${stack.adminUrl}/${route}`);
    const description = page.locator('[name="description"]');
    await expect.poll(() => description.inputValue(), { timeout: 10_000 }).toBe('changed elsewhere');
    const warning = page.getByTestId('changed-elsewhere');
    await description.fill('mine');
    expect(await warning.count()).toBe(0);
    await changeElsewhere(path, { description: 'theirs' });
    await expect.poll(async () => (await refetch(page), warning.count()), { timeout: 10_000, interval: 250 }).toBe(1);
    expect(await warning.innerText()).toBe(
      'Changed elsewhere while you edited: description. Save replaces the new stored value with yours.',
    );
    expect(await description.inputValue()).toBe('mine');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL((url) => url.hash !== route);
    expect((await api('GET', path)).json.description).toBe('mine');
  });
});
