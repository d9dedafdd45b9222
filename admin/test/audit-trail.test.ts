import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOrder, type Kind } from '@ccproxy/operator';
import { operations, startHttpAdmin, type HttpAdmin } from './http-admin.ts';

/**
 * The audit trail over real HTTP against the local-mode admin and Postgres: its order past nine
 * rows, and for every resource kind a row per write naming that kind and the resource.
 */
let http: HttpAdmin;
beforeAll(async () => {
  http = await startHttpAdmin();
});
afterAll(async () => http?.close());

const ids = (rows: Array<Record<string, unknown>>) => rows.map((row) => Number(row.id));
const descending = (values: number[]) => [...values].sort((a, b) => b - a);

describe('the audit trail order', () => {
  it('lists newest first by numeric id once ids reach two digits, and sorts ids as numbers both ways', async () => {
    for (let n = 0; n < 14; n++)
      expect((await http.call('POST', '/admin/api/users', { namespace: 'team-o', name: `u${n}` })).status).toBe(201);
    const all = await http.call('GET', '/admin/api/audit?_end=100');
    expect(all.status).toBe(200);
    expect(all.body.length).toBeGreaterThanOrEqual(15);
    expect(ids(all.body)).toEqual(descending(ids(all.body)));
    const ascending = await http.call('GET', '/admin/api/audit?_end=100&_sort=id&_order=ASC');
    expect(ids(ascending.body)).toEqual(descending(ids(ascending.body)).reverse());
    // ra-data-simple-rest's page of five: the five newest, not the text-largest ("9" > "14").
    const page = await http.call('GET', `/admin/api/audit?${encodeURI('sort=["id","DESC"]&range=[0,4]')}`);
    expect(ids(page.body)).toEqual(ids(all.body).slice(0, 5));
    // Ties of another column fall back to the id, numerically too.
    const byAction = await http.call('GET', '/admin/api/audit?_end=100&_sort=action&_order=DESC&action=create');
    expect(ids(byAction.body)).toEqual(descending(ids(byAction.body)));
  });
});

interface Fixture {
  collection: string;
  name: string;
  create: Record<string, unknown>;
  /** The body of its PUT, given the resourceVersion read. */
  update: (resourceVersion: string) => Record<string, unknown>;
}

/** One resource of each kind, in team-k: what the test writes through the kind's routes. */
const fixtures: Record<Kind, Fixture> = {
  ProxyUser: {
    collection: 'users',
    name: 'kim',
    create: { namespace: 'team-k', name: 'kim' },
    update: (resourceVersion) => ({ resourceVersion, displayName: 'Kim' }),
  },
  AccessKey: {
    collection: 'access-keys',
    name: 'kim-key',
    create: { namespace: 'team-k', name: 'kim-key', user: 'kim' },
    update: (resourceVersion) => ({ resourceVersion, routing: 'PlanOnly' }),
  },
  BedrockKey: {
    collection: 'bedrock-keys',
    name: 'kim-bedrock',
    create: { namespace: 'team-k', name: 'kim-bedrock', accessKey: 'kim-key', apiKey: 'bedrock-api-key-1' },
    // A new API key replaces the old one whole: no version to name.
    update: () => ({ apiKey: 'bedrock-api-key-2' }),
  },
  TeamBudget: {
    collection: 'team-budgets',
    name: 'team',
    create: { namespace: 'team-k', budget: {} },
    update: (resourceVersion) => ({ resourceVersion, description: 'Team K' }),
  },
};

describe('audit rows of resource writes', () => {
  it('every write route of every kind leaves rows naming that kind, its namespace and its name', async () => {
    const writes = (await operations(http)).filter(
      // My keys act for a developer's linked user (self-service.test.ts checks their rows); ending
      // sessions touches no namespaced resource (admin-sessions.test.ts checks its rows).
      ({ method, path }) =>
        method !== 'GET' &&
        path.startsWith('/admin/api/') &&
        !path.startsWith('/admin/api/my-') &&
        !path.startsWith('/admin/api/sessions'),
    );
    const exercised = new Set<string>();
    const made = new Map<Kind, string[]>();
    const write = async (kind: Kind, method: string, path: string, payload?: unknown) => {
      const { collection, name } = fixtures[kind];
      const url = path.replace('{id}', encodeURIComponent(`team-k/${name}`));
      const answer = await http.call(method, `/admin/api/${collection}${url}`, payload);
      expect(answer.status, answer.text).toBeLessThan(300);
      exercised.add(`${method} /admin/api/${collection}${path}`);
      made.set(kind, [...(made.get(kind) ?? []), `${method} ${path}`]);
    };
    for (const kind of kindOrder) {
      const fixture = fixtures[kind];
      expect(fixture, `a fixture for ${kind}`).toBeDefined();
      await write(kind, 'POST', '', fixture.create);
      const id = encodeURIComponent(`team-k/${fixture.name}`);
      const current = await http.call('GET', `/admin/api/${fixture.collection}/${id}`);
      await write(kind, 'PUT', '/{id}', fixture.update(String(current.body.resourceVersion)));
      // The collection's other writes (rotate, revoke): whatever the document lists for it.
      for (const { method, path } of writes.filter((w) => w.path.startsWith(`/admin/api/${fixture.collection}/{id}/`)))
        await write(kind, method, path.slice(`/admin/api/${fixture.collection}`.length));
    }
    for (const kind of [...kindOrder].reverse()) await write(kind, 'DELETE', '/{id}');

    expect([...exercised].sort()).toEqual(writes.map(({ method, path }) => `${method} ${path}`).sort());
    for (const kind of kindOrder) {
      const rows = await http.call('GET', `/admin/api/audit?_end=100&namespace=team-k&resourceKind=${kind}`);
      expect(
        rows.body.map((row) => ({
          kind: row.resourceKind,
          namespace: row.namespace,
          name: row.name,
          outcome: row.outcome,
        })),
      ).toEqual(
        (made.get(kind) ?? []).map(() => ({
          kind,
          namespace: 'team-k',
          name: fixtures[kind].name,
          outcome: 'success',
        })),
      );
    }
    // Nothing recorded under another name for a kind (the route's path segment, say).
    const all = await http.call('GET', '/admin/api/audit?_end=1000');
    const kinds = new Set(all.body.map((row) => row.resourceKind));
    expect([...kinds].filter((kind) => kind !== null && !kindOrder.includes(kind as Kind))).toEqual([]);
  });
});
