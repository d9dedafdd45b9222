import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askThroughProxy, bedrockApiKey, startUiStack, type UiStack } from './ui-stack.ts';

const overloaded = () => ({ kind: 'error' as const, status: 529, type: 'overloaded_error', message: 'Overloaded' });
const invalid = () => ({ kind: 'error' as const, status: 400, type: 'invalid_request_error', message: 'bad' });
const bedrockModel = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const filterUrl = (resource: string, filter: object) =>
  `#/${resource}?filter=${encodeURIComponent(JSON.stringify(filter))}`;

/**
 * Observing the product from the UI, with every part real (Postgres, the proxy, the Anthropic and
 * Bedrock test servers, the admin process, Chromium): failover set up through the facade, Plan
 * failing until the key's breaker opens and traffic goes to Bedrock, then the request log (provider
 * Bedrock, its cost), the breaker history and the live breaker, usage by provider with cost, the
 * CSV downloads matching the filters, and a JSON 400 naming the parameter for every bad query.
 */
describe('request log, breaker history and usage cost in Chromium', () => {
  let stack: UiStack;
  let page: Page;
  let session: { authorization: string };

  beforeAll(async () => {
    stack = await startUiStack();
    page = await stack.newPage();
    await stack.logIn(page);
    session = await stack.admin.auth();
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(async (context) => {
    stack.anthropic.respondWith(undefined);
    stack.bedrock.respondWith(undefined);
    if (context.task.result?.state === 'fail') await stack.shot(page, `failed-${context.task.name.slice(0, 40)}`);
  });

  const get = async (url: string) => {
    const response = await stack.admin.app.inject({ method: 'GET', url: `/admin/api/${url}`, headers: session });
    return { status: response.statusCode, headers: response.headers, body: response.body };
  };
  const json = async <T>(url: string) => {
    const answer = await get(url);
    expect(answer.status, answer.body).toBe(200);
    return JSON.parse(answer.body) as T;
  };
  const post = async (url: string, payload: object) => {
    const response = await stack.admin.app.inject({
      method: 'POST',
      url: `/admin/api/${url}`,
      headers: session,
      payload,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as Record<string, unknown>;
  };
  const seed = async (user: string, bedrock?: object) => {
    await post('users', { namespace: 'team-o', name: user });
    const issued = await post('access-keys', {
      namespace: 'team-o',
      name: `${user}-key`,
      user,
      ...(bedrock === undefined ? {} : { bedrock }),
    });
    if (bedrock !== undefined)
      await post('bedrock-keys', {
        namespace: 'team-o',
        name: `${user}-bedrock`,
        accessKey: `${user}-key`,
        apiKey: bedrockApiKey,
      });
    const baseUrl = String(issued.baseUrl);
    await expect.poll(async () => (await askThroughProxy(baseUrl)).status, { timeout: 15_000 }).toBe(200);
    return baseUrl;
  };
  const flushed = async (url: string, atLeast: number) => {
    await expect
      .poll(async () => (await stack.proxy.usage?.flush(), (await json<unknown[]>(url)).length), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(atLeast);
    return json<Array<Record<string, unknown>>>(url);
  };

  it('failover through the facade: the breaker opens, Bedrock serves, and the log, history and usage show it with cost', async () => {
    const olga = await seed('olga', { region: 'us-east-1', api: 'Converse', model: bedrockModel, modelMap: {} });
    const pete = await seed('pete');
    stack.anthropic.respondWith(overloaded);
    const served = [];
    for (let i = 0; i < 5; i += 1) served.push(await askThroughProxy(olga));
    expect(served.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    expect(stack.bedrock.requests.at(-1)?.modelId).toBe(bedrockModel);
    // A failure with no usage (a client error Plan answers for a key without failover) is in the log too.
    stack.anthropic.respondWith(invalid);
    expect((await askThroughProxy(pete)).status).toBe(400);
    stack.anthropic.respondWith(undefined);

    const olgaBedrock = 'requests?accessKeyId=team-o/olga-key&provider=bedrock&_start=0&_end=100';
    const rows = await flushed(olgaBedrock, 5);
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      expect(row).toMatchObject({
        provider: 'bedrock',
        failover: true,
        status: 200,
        outcome: 'ok',
        userId: 'team-o/olga',
      });
      expect(row.costMicroUsd).toBeGreaterThan(0);
    }
    const failed = await flushed('requests?accessKeyId=team-o/pete-key&outcome=client_error', 1);
    expect(failed).toMatchObject([{ status: 400, metered: false, provider: 'plan', costMicroUsd: null }]);
    // No key and no body in any answer.
    expect(JSON.stringify(rows)).not.toMatch(/ak_[\w-]{20,}|hello/);

    // The request log, filtered as the URL says: provider Bedrock and a cost, not "unpriced".
    await page.goto(
      `${stack.adminUrl}/${filterUrl('requests', { accessKeyId: 'team-o/olga-key', provider: 'bedrock' })}`,
    );
    const first = page.getByRole('row', { name: /team-o\/olga-key/ }).first();
    await first.waitFor();
    expect(await first.textContent()).toMatch(/bedrock/);
    expect(await first.getByTestId('cost').textContent()).toMatch(/^\$0\.\d{6}$/);
    expect(await page.getByRole('row', { name: /team-o\/olga-key/ }).count()).toBe(5);
    await stack.shot(page, 'requests');

    // The CSV download matches the filter: the same five requests, in the same columns.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = await readFile((await download.path()) as string, 'utf8');
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^time,request_id,user,access_key,model,provider,failover,status,/);
    expect(
      lines
        .slice(1)
        .map((line) => line.split(',')[1])
        .sort(),
    ).toEqual(rows.map((row) => row.id).sort());
    for (const line of lines.slice(1)) expect(line).toMatch(/,team-o\/olga,team-o\/olga-key,.*,bedrock,true,200,ok,/);

    // The breaker history: opened by three 529s, still open, Bedrock served requests meanwhile.
    const events = await json<Array<Record<string, unknown>>>('breaker-events?accessKeyId=team-o/olga-key');
    expect(events).toMatchObject([{ accessKeyId: 'team-o/olga-key', closedAt: null, failures: 3 }]);
    expect(events[0]?.reasons).toEqual(['status_529', 'status_529', 'status_529']);
    expect(events[0]?.bedrockRequests).toBeGreaterThanOrEqual(2);
    await page.goto(`${stack.adminUrl}/${filterUrl('breaker-events', { accessKeyId: 'team-o/olga-key' })}`);
    const event = page.getByRole('row', { name: /team-o\/olga-key/ });
    await event.waitFor();
    expect(await event.getByTestId('breaker-reasons').textContent()).toBe('3 failures: HTTP 529 ×3');
    expect(await event.textContent()).toMatch(/still open/);
    await stack.shot(page, 'breaker-history');

    // The dashboard: the live breaker state and the opening.
    await page.goto(`${stack.adminUrl}/#/`);
    await page.getByTestId('live-breakers').getByText('team-o/olga-key: open').waitFor();
    await page
      .getByTestId('breaker-openings')
      .getByText(/team-o\/olga-key: opened .* after HTTP 529 ×3/)
      .waitFor();
    await stack.shot(page, 'dashboard-breakers');

    // Usage by provider with cost, and the price table it came from.
    const byProvider = await json<Array<Record<string, unknown>>>('usage/breakdown?by=provider&bucket=day');
    const bedrock = byProvider.find((row) => row.group === 'bedrock');
    expect(bedrock?.requests).toBe(5);
    expect(bedrock?.costMicroUsd).toBe(rows.reduce((sum, row) => sum + Number(row.costMicroUsd), 0));
    await page.goto(`${stack.adminUrl}/${filterUrl('usage-breakdown', { by: 'provider', bucket: 'day' })}`);
    const usageRow = page.getByRole('row', { name: /bedrock/ });
    await usageRow.waitFor();
    expect(await usageRow.getByTestId('usage-cost').textContent()).toBe(
      `$${(Number(bedrock?.costMicroUsd) / 1e6).toFixed(6)}`,
    );
    await page
      .getByTestId('price-table')
      .getByText(/^Effective \d{4}-\d{2}-\d{2}/)
      .waitFor();
    await stack.shot(page, 'usage-cost');
    const usageCsv = (await get('usage/breakdown.csv?by=provider&bucket=day')).body.trimEnd().split('\r\n');
    expect(usageCsv).toHaveLength(byProvider.length + 1);
    expect(usageCsv.find((line) => line.includes(',bedrock,'))).toMatch(/,bedrock,5,5,/);

    // A request the proxy fails itself (Bedrock down while the breaker is open) is in the log as
    // one row: its status, the proxy's code, no tokens, no cost, and not in the usage totals.
    stack.bedrock.respondWith(() => ({ kind: 'error', status: 500, name: 'InternalServerException', message: 'down' }));
    const down = await askThroughProxy(olga);
    expect(down.status).toBeGreaterThanOrEqual(500);
    const errors = await flushed('requests?accessKeyId=team-o/olga-key&outcome=upstream_error', 1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ provider: 'bedrock', failover: true, status: down.status, metered: false });
    expect(errors[0]?.errorCode).toMatch(/^PRX_BEDROCK_/);
    expect(errors[0]?.costMicroUsd).toBeNull();
    expect(
      (await json<Array<Record<string, unknown>>>('usage/breakdown?by=provider&bucket=day')).find(
        (row) => row.group === 'bedrock',
      )?.requests,
    ).toBe(5);
  });

  it('free text matches values in every list, never field names', async () => {
    const lists: Array<[string, string, string]> = [
      ['users', 'olga', 'resourceVersion'],
      ['access-keys', 'olga-key', 'resourceVersion'],
      ['bedrock-keys', 'olga-bedrock', 'resourceVersion'],
      ['breakers', 'olga-key', 'consecutiveFailures'],
      ['requests', 'OLGA-KEY', 'outcome'],
      ['breaker-events', 'olga-key 529', 'reopened'],
      ['usage/breakdown?by=key&', 'olga-key', 'bucketStart'],
    ];
    for (const [list, value, fieldName] of lists) {
      const url = (q: string) => `${list}${list.includes('?') ? '' : '?'}q=${encodeURIComponent(q)}`;
      expect((await json<unknown[]>(url(value))).length, `${list} q=${value}`).toBeGreaterThan(0);
      expect(await json<unknown[]>(url(fieldName)), `${list} q=${fieldName}`).toEqual([]);
    }
  });

  it('refuses every bad query parameter of the new endpoints with a JSON 400 naming it', async () => {
    const cases: Array<[string, string]> = [
      ['requests?provider=azure', 'provider'],
      ['requests?outcome=fine', 'outcome'],
      ['requests?from=yesterday', 'from'],
      ['requests?to=2026-02-30T25:00:00Z', 'to'],
      ['requests?from=2026-12-07T00:00:00Z&to=2026-12-01T00:00:00Z', 'from'],
      ['requests?userId=Not%20An%20Id', 'userId'],
      ['requests?accessKeyId=x', 'accessKeyId'],
      ['requests?_sort=body', '_sort'],
      ['requests?_order=sideways', '_order'],
      ['requests?_start=-1', '_start'],
      ['requests?_start=0&_end=5000', '_end'],
      ['requests?apiKey=ak_123', 'apiKey'],
      ['requests.csv?outcome=fine', 'outcome'],
      ['requests.csv?_start=0', '_start'],
      ['requests.csv?from=2026-13-01', 'from'],
      ['breaker-events?accessKeyId=NOPE', 'accessKeyId'],
      ['breaker-events?_sort=reasons', '_sort'],
      ['breaker-events?from=soon', 'from'],
      ['usage/breakdown', 'by'],
      ['usage/breakdown?by=colour', 'by'],
      ['usage/breakdown?by=user&bucket=week', 'bucket'],
      ['usage/breakdown?by=user&bucket=hour&from=2020-01-01&to=2026-01-01', 'bucket'],
      ['usage/breakdown?by=user&provider=azure', 'provider'],
      ['usage/breakdown.csv?by=model&to=never', 'to'],
      ['usage/breakdown.csv?by=model&extra=1', 'extra'],
      ['prices?verbose=1', 'verbose'],
    ];
    for (const [url, parameter] of cases) {
      const answer = await get(url);
      expect(answer.status, url).toBe(400);
      expect(answer.headers['content-type'], url).toMatch(/^application\/json/);
      const body = JSON.parse(answer.body) as { error: string; problems?: string[]; message: string };
      expect(body.error, url).toBe('bad_request');
      expect(`${body.message} ${(body.problems ?? []).join(' ')}`, url).toContain(parameter);
    }
  });
});
