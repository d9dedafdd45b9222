import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

let admin: LocalAdmin;
let authorization: string;

beforeAll(async () => {
  admin = await startLocalAdmin();
  authorization = (await admin.auth()).authorization;
  await admin.app.inject({
    method: 'POST',
    url: '/admin/api/users',
    headers: { authorization },
    payload: { namespace: 'team-a', name: 'alice' },
  });
});
afterAll(async () => admin?.close());

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  body?: string;
  contentType?: string;
  status: number;
  /** Text the message or problems must contain: the answer says what was wrong. */
  mentions?: string;
}

const users = '/admin/api/users';
const cases: Case[] = [
  {
    name: 'malformed JSON',
    method: 'POST',
    url: users,
    body: '{"namespace": "team-a", "name": ',
    status: 400,
    mentions: 'JSON',
  },
  { name: 'JSON array instead of object', method: 'POST', url: users, body: '[1,2]', status: 400, mentions: 'body' },
  { name: 'JSON null', method: 'POST', url: users, body: 'null', status: 400, mentions: 'body' },
  { name: 'empty body with JSON content type', method: 'POST', url: users, body: '', status: 400 },
  {
    name: 'wrong type',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: 'team-a', name: 'bob', displayName: 5 }),
    status: 400,
    mentions: '/displayName',
  },
  {
    name: 'boolean as string',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: 'team-a', name: 'bob', suspended: 'true' }),
    status: 400,
    mentions: '/suspended',
  },
  {
    name: 'unknown key',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: 'team-a', name: 'bob', admin: true }),
    status: 400,
    mentions: 'admin',
  },
  {
    name: 'missing required key',
    method: 'POST',
    url: users,
    body: JSON.stringify({ name: 'bob' }),
    status: 400,
    mentions: 'namespace',
  },
  {
    name: 'name not a DNS name',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: 'team-a', name: 'Bob Smith' }),
    status: 400,
    mentions: '/name',
  },
  {
    name: 'path traversal in namespace',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: '../etc', name: 'bob' }),
    status: 400,
    mentions: '/namespace',
  },
  {
    name: 'huge body',
    method: 'POST',
    url: users,
    body: JSON.stringify({ namespace: 'team-a', name: 'bob', description: 'x'.repeat(200_000) }),
    status: 413,
  },
  {
    name: 'text/plain body',
    method: 'POST',
    url: users,
    body: 'namespace=team-a',
    contentType: 'text/plain',
    status: 415,
  },
  {
    name: 'update without resourceVersion',
    method: 'PUT',
    url: `${users}/${encodeURIComponent('team-a/alice')}`,
    body: JSON.stringify({ displayName: 'A' }),
    status: 400,
    mentions: 'resourceVersion',
  },
  {
    name: 'bad routing enum',
    method: 'POST',
    url: '/admin/api/access-keys',
    body: JSON.stringify({ namespace: 'team-a', name: 'k', user: 'alice', routing: 'Sometimes' }),
    status: 400,
    mentions: '/routing',
  },
  {
    name: 'bad Bedrock region',
    method: 'POST',
    url: '/admin/api/access-keys',
    body: JSON.stringify({ namespace: 'team-a', name: 'k', user: 'alice', bedrock: { region: 'mars' } }),
    status: 400,
    mentions: '/bedrock/region',
  },
  {
    name: 'Bedrock API key with spaces',
    method: 'POST',
    url: '/admin/api/bedrock-keys',
    body: JSON.stringify({ namespace: 'team-a', name: 'b', accessKey: 'k', apiKey: 'not a key at all' }),
    status: 400,
    mentions: '/apiKey',
  },
  { name: 'malformed id', method: 'GET', url: `${users}/not-an-id`, status: 400, mentions: 'id' },
  { name: 'negative _start', method: 'GET', url: `${users}?_start=-1`, status: 400, mentions: '_start' },
  { name: 'non-numeric _end', method: 'GET', url: `${users}?_end=ten`, status: 400, mentions: '_end' },
  { name: '_end before _start', method: 'GET', url: `${users}?_start=10&_end=5`, status: 400, mentions: '_end' },
  { name: 'bad _order', method: 'GET', url: `${users}?_order=UP`, status: 400, mentions: '_order' },
  { name: 'unsortable field', method: 'GET', url: `${users}?_sort=__proto__`, status: 400, mentions: '_sort' },
  { name: 'unknown filter', method: 'GET', url: `${users}?role=root`, status: 400, mentions: 'role' },
  {
    name: 'simple-rest range not JSON',
    method: 'GET',
    url: `${users}?range=${encodeURIComponent('[0,')}`,
    status: 400,
    mentions: 'range',
  },
  {
    name: 'simple-rest sort of the wrong shape',
    method: 'GET',
    url: `${users}?sort=${encodeURIComponent('{"a":1}')}`,
    status: 400,
    mentions: 'sort',
  },
  {
    name: 'simple-rest filter with an unknown key',
    method: 'GET',
    url: `${users}?filter=${encodeURIComponent('{"role":"root"}')}`,
    status: 400,
    mentions: 'role',
  },
  {
    name: 'bad time in usage range',
    method: 'GET',
    url: '/admin/api/usage?from=yesterday',
    status: 400,
    mentions: 'from',
  },
  { name: 'impossible date', method: 'GET', url: '/admin/api/usage?from=2026-13-45', status: 400, mentions: 'from' },
  {
    name: 'hour buckets over a year',
    method: 'GET',
    url: '/admin/api/usage?from=2025-01-01&to=2026-01-01&bucket=hour',
    status: 400,
    mentions: 'bucket',
  },
  { name: 'bad bucket', method: 'GET', url: '/admin/api/usage?bucket=minute', status: 400, mentions: 'bucket' },
  {
    name: 'summary limit too large',
    method: 'GET',
    url: '/admin/api/usage/summary?limit=100000',
    status: 400,
    mentions: 'limit',
  },
];

describe('admin facade: bad input gets a precise JSON 4xx, never a 5xx or a partial write', () => {
  it.each(cases)('$name → $status', async (test) => {
    const response = await admin.app.inject({
      method: test.method,
      url: test.url,
      headers: {
        authorization,
        ...(test.body === undefined ? {} : { 'content-type': test.contentType ?? 'application/json' }),
      },
      ...(test.body === undefined ? {} : { payload: test.body }),
    });
    expect(response.statusCode, response.body).toBe(test.status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json() as { statusCode: number; message: string; problems?: string[] };
    expect(body.statusCode).toBe(test.status);
    if (test.mentions !== undefined)
      expect(`${body.message} ${(body.problems ?? []).join(' ')}`).toContain(test.mentions);
  });

  it('wrote nothing for any of them', async () => {
    const files = (await readdir(admin.manifestsDir, { recursive: true })).filter((file) => file.endsWith('.yaml'));
    expect(files).toEqual(['team-a/proxyuser-alice.yaml']);
    expect((await admin.app.inject({ method: 'GET', url: '/admin/healthz' })).statusCode).toBe(401);
    expect((await admin.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});
