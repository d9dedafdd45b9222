import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, migrate, PgliteDatabase, type Database } from '@ccproxy/core';
import { openTestDatabase } from './admin-fixture.ts';
import { fillPath, operations, requiredQuery, startHttpAdmin, type HttpAdmin } from './http-admin.ts';

/**
 * The query rules every admin route shares, over real HTTP against the local-mode admin: a time
 * the database cannot hold is a 400 naming the parameter, paging cannot be overridden through
 * `filter` or a second spelling, and an unknown parameter is a 400 on every route.
 */
const unknown = 'zz-unknown';
const said = (body: { message?: string; problems?: string[] } | null) =>
  `${body?.message ?? ''} ${(body?.problems ?? []).join(' ')}`;

/** Bodies that pass each required-body route's schema, so what is refused is the query alone. */
const validBodies: Record<string, unknown> = {
  'POST /admin/auth/login': { username: 'admin', password: 'not checked: the query is refused first' },
  'POST /admin/api/users': { namespace: 'team-a', name: 'zed' },
  'PUT /admin/api/users/{id}': { resourceVersion: '1' },
  'POST /admin/api/access-keys': { namespace: 'team-a', name: 'zed-key', user: 'alice' },
  'PUT /admin/api/access-keys/{id}': { resourceVersion: '1' },
  'POST /admin/api/bedrock-keys': { namespace: 'team-a', name: 'zed', accessKey: 'zed-key', apiKey: 'abcdefgh12' },
  'PUT /admin/api/bedrock-keys/{id}': { apiKey: 'abcdefgh12' },
  'POST /admin/api/team-budgets': { namespace: 'team-a', budget: {} },
  'PUT /admin/api/team-budgets/{id}': { resourceVersion: '1' },
  'POST /admin/api/sessions/revoke': { subject: 'nobody' },
};

const databases: Array<[string, () => Promise<Database>]> = [
  ['Postgres', openTestDatabase],
  [
    // What `ccproxy local` runs on: it sends a Date as its ISO text, which has a year 0000.
    'PGlite',
    async () => {
      const db = await PgliteDatabase.open();
      await migrate(db, createLogger({ level: 'silent' }));
      return db;
    },
  ],
];

const refused = [
  '0000-01-01',
  '0000-12-31T23:59:59Z',
  '0001-01-01T00:00+01:00',
  '9999-12-31T23:00-05:00',
  '2023-02-30',
  '2023-02-29T10:00Z',
  '2024-04-31',
  '99999-01-01',
];
const accepted = [
  ['0001-01-01', '0001-01-02T00:00Z'],
  ['9999-12-30', '9999-12-31T23:59:59.999Z'],
  ['2024-02-29', '2024-03-01'],
] as const;

describe.each(databases)('times on %s', (_name, open) => {
  let http: HttpAdmin;
  let db: Database;
  beforeAll(async () => {
    db = await open();
    http = await startHttpAdmin({ db });
  });
  afterAll(async () => {
    await http?.close();
    await db?.close();
  });

  /** Every query parameter of the document that is a time (the one isoTime schema's pattern). */
  const timeParameters = async () =>
    (await operations(http)).flatMap(({ method, path, doc }) =>
      (doc.parameters ?? [])
        .filter((parameter) => parameter.in === 'query' && parameter.schema.pattern?.startsWith('^\\d{4}-') === true)
        .map((parameter) => ({ method, path, doc, name: parameter.name })),
    );

  it('every route taking a time answers 400 naming it for a time no database holds or no calendar has, 200 inside 0001-9999', async () => {
    const found = await timeParameters();
    // usage, usage summary, audit, requests (+ CSV), breaker events, usage breakdown (+ CSV): from and to each.
    expect(found.length).toBeGreaterThanOrEqual(16);
    for (const { method, path, doc, name } of found)
      for (const value of refused) {
        const answer = await http.call(method, `${path}?${requiredQuery(doc)}${name}=${encodeURIComponent(value)}`);
        expect({ path, name, value, status: answer.status }).toEqual({ path, name, value, status: 400 });
        expect(said(answer.body), `${path} ${name}=${value}`).toContain(`querystring/${name}`);
      }
    // The first and last instants the databases hold, and a leap day, are taken.
    for (const [path, required] of new Map(found.map(({ path, doc }) => [path, requiredQuery(doc)])))
      for (const [from, to] of accepted) {
        const answer = await http.call('GET', `${path}?${required}from=${from}&to=${encodeURIComponent(to)}`);
        expect({ path, from, status: answer.status }, answer.text).toEqual({ path, from, status: 200 });
      }
  });
});

describe('paging and unknown parameters', () => {
  let http: HttpAdmin;
  beforeAll(async () => {
    http = await startHttpAdmin();
    for (const name of ['alice', 'bob', 'carol'])
      expect((await http.call('POST', '/admin/api/users', { namespace: 'team-a', name })).status).toBe(201);
  });
  afterAll(async () => http?.close());

  it.each([
    ['filter holding _end', 'filter={"_end":1000000}&range=[0,0]', '_end'],
    ['filter holding _start', 'filter={"_start":1}', '_start'],
    ['filter holding _sort', 'filter={"_sort":"name"}&sort=["id","ASC"]', '_sort'],
    ['filter holding _order', 'filter={"_order":"DESC"}', '_order'],
    ['range and a different _start', 'range=[0,24]&_start=5', '_start'],
    ['range and a different _end', 'range=[0,24]&_end=2', '_end'],
    ['sort and a different _sort', 'sort=["id","ASC"]&_sort=name', '_sort'],
    ['sort and a different _order', 'sort=["id","ASC"]&_order=DESC', '_order'],
    ['filter and a different flat filter', 'filter={"q":"alice"}&q=bob', 'q'],
  ])('a list refuses %s with a 400 naming the conflict', async (_what, query, key) => {
    const answer = await http.call('GET', `/admin/api/users?${encodeURI(query)}`);
    expect(answer.status).toBe(400);
    expect(said(answer.body)).toContain(key);
  });

  it('a list takes both spellings when they agree, and an explicit _end beside filter', async () => {
    const agreeing = await http.call(
      'GET',
      `/admin/api/users?${encodeURI('range=[0,1]&_start=0&_end=2&sort=["id","ASC"]&_sort=id')}`,
    );
    expect(agreeing.status, agreeing.text).toBe(200);
    expect(agreeing.body.map((row) => row.name)).toEqual(['alice', 'bob']);
    const paged = await http.call('GET', `/admin/api/users?${encodeURI('filter={"namespace":"team-a"}&_end=1')}`);
    expect(paged.status, paged.text).toBe(200);
    expect(paged.headers.get('content-range')).toBe('users 0-0/3');
  });

  it('every route refuses an unknown query parameter with a 400 naming it', async () => {
    const all = [...(await operations(http)), { method: 'GET', path: '/admin/openapi.json', doc: {} }];
    expect(all.length).toBeGreaterThan(35);
    for (const { method, path, doc } of all) {
      const route = `${method} ${path}`;
      // Bodies are validated before queries: a route whose body is required needs one in validBodies.
      const answer = await http.call(method, `${fillPath(path)}?${requiredQuery(doc)}${unknown}=1`, validBodies[route]);
      expect({ route, status: answer.status }, answer.text).toEqual({ route, status: 400 });
      expect(said(answer.body), `${route} (a body it requires belongs in validBodies)`).toContain(unknown);
    }
  });

  it.each(['requests', 'breaker-events', 'audit', 'sessions'])(
    'the %s list (paged in SQL) holds at most 1,000 rows a page, and a reversed range is a 400',
    async (list) => {
      const tooBig = await http.call('GET', `/admin/api/${list}?_start=5&_end=1006`);
      expect(tooBig.status, tooBig.text).toBe(400);
      expect(said(tooBig.body)).toContain('at most 1000');
      const reversed = await http.call('GET', `/admin/api/${list}?_start=5&_end=4`);
      expect(reversed.status, reversed.text).toBe(400);
      expect(said(reversed.body)).toContain('_end');
      const full = await http.call('GET', `/admin/api/${list}?_start=5&_end=1005`);
      expect(full.status, full.text).toBe(200);
      expect(full.headers.get('content-range')).toMatch(new RegExp(`^${list} 5-\\d+/\\d+$`));
    },
  );

  it('a detail route refuses the list parameters (filter, range, sort) instead of dropping them', async () => {
    for (const query of ['filter={}', 'range=[0,1]', 'sort=["id","ASC"]']) {
      const answer = await http.call(
        'GET',
        `/admin/api/users/${encodeURIComponent('team-a/alice')}?${encodeURI(query)}`,
      );
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(said(answer.body)).toContain(query.split('=')[0]);
    }
    expect((await http.call('GET', `/admin/api/users/${encodeURIComponent('team-a/alice')}`)).status).toBe(200);
  });
});
