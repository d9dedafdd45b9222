import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badSpecs, goodSpecs, type SpecCase } from '../../operator/test/admission-cases.ts';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * The admission table of operator/test/admission-cases.ts through the admin facade: every bad
 * spec the facade can express is a 400 naming the field, and nothing is written; every good one
 * is created. The facade derives some fields itself (an AccessKey's secretName, a BedrockKey's
 * secretRef), so the cases about those are the API server's and the local operator's alone.
 */
let admin: LocalAdmin;
let headers: { authorization: string };
const namespace = 'team-a';

beforeAll(async () => {
  admin = await startLocalAdmin();
  headers = await admin.auth();
  // The references the cases use exist, so only the bad field can be refused.
  for (const [url, payload] of [
    ['/admin/api/users', { namespace, name: 'alice' }],
    ['/admin/api/access-keys', { namespace, name: 'alice-laptop', user: 'alice' }],
  ] as const)
    expect((await admin.app.inject({ method: 'POST', url, headers, payload })).statusCode).toBe(201);
});
afterAll(async () => admin?.close());

const paths = { ProxyUser: 'users', AccessKey: 'access-keys', BedrockKey: 'bedrock-keys' } as const;
/** Spec fields the facade takes under another name. */
const renamed: Record<string, string> = { 'userRef.name': 'user', 'accessKeyRef.name': 'accessKey' };

/** The facade's request for a case, or undefined when it cannot express the case's spec. */
function request(c: SpecCase, name: string): Record<string, unknown> | undefined {
  const spec = c.spec as Record<string, Record<string, unknown> | string | boolean | undefined>;
  if (c.kind === 'ProxyUser') return { namespace, name, ...spec };
  if (c.kind === 'AccessKey') {
    const userRef = spec.userRef as Record<string, unknown>;
    if (Object.keys(userRef).length !== 1 || spec.secretName !== 'alice-key') return undefined;
    const { routing, bedrock, budget, rateLimits } = spec;
    return {
      namespace,
      name,
      user: userRef.name,
      ...(routing === undefined ? {} : { routing }),
      ...{ bedrock, budget, rateLimits },
    };
  }
  const secretRef = spec.secretRef as Record<string, unknown>;
  if (secretRef.name !== 'team-bedrock' || secretRef.key !== 'apiKey') return undefined;
  return {
    namespace,
    name,
    accessKey: (spec.accessKeyRef as { name: string }).name,
    apiKey: 'bedrock-api-key-0123',
    ...(spec.api === undefined ? {} : { api: spec.api }),
  };
}

/** The body field (`bedrock.model`, `user`) or spec field (`spec.bedrock.model`) the answer must name. */
function named(text: string, field: string): boolean {
  const bare = field.replace(/^spec\./, '');
  const facade = renamed[bare] ?? bare;
  return [field, `body.${facade}`].some(
    (spelling) => text.includes(spelling) || text.includes(spelling.replaceAll('.', '/')),
  );
}

let serial = 0;
const expressible = (cases: SpecCase[]) =>
  cases.flatMap((c) => {
    const name = `adm-${(serial += 1)}`;
    const body = request(c, name);
    return body === undefined ? [] : [[c.name, c, name, body] as const];
  });

async function written(name: string): Promise<string[]> {
  const files = [
    ...(await readdir(admin.manifestsDir, { recursive: true })),
    ...(await readdir(admin.dataDir, { recursive: true })),
  ];
  return files.filter((file) => file.includes(name));
}

describe('the admin facade refuses the bad specs of the admission table', () => {
  const cases = expressible(badSpecs);

  it('expresses most of the table (the rest are fields the facade derives itself)', () => {
    expect(cases.length).toBeGreaterThan(badSpecs.length / 2);
  });

  it.each(cases)('%s: 400 naming the field, nothing written', async (_name, c, name, body) => {
    const response = await admin.app.inject({
      method: 'POST',
      url: `/admin/api/${paths[c.kind]}`,
      headers,
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(400);
    const answer = response.json() as { message: string; problems?: string[] };
    expect(named(`${answer.message} ${(answer.problems ?? []).join(' ')}`, c.field), response.body).toBe(true);
    const id = encodeURIComponent(`${namespace}/${name}`);
    expect(
      (await admin.app.inject({ method: 'GET', url: `/admin/api/${paths[c.kind]}/${id}`, headers })).statusCode,
    ).toBe(404);
    expect(await written(name)).toEqual([]);
  });

  it('refuses a cross-field break made by an update too (PUT routing BedrockOnly on a key without a model)', async () => {
    const id = encodeURIComponent(`${namespace}/alice-laptop`);
    const current = (
      await admin.app.inject({ method: 'GET', url: `/admin/api/access-keys/${id}`, headers })
    ).json() as {
      resourceVersion: string;
    };
    const response = await admin.app.inject({
      method: 'PUT',
      url: `/admin/api/access-keys/${id}`,
      headers,
      payload: { resourceVersion: current.resourceVersion, routing: 'BedrockOnly' },
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.body).toContain('spec.bedrock.model: routing BedrockOnly needs a Bedrock model');
    const after = (await admin.app.inject({ method: 'GET', url: `/admin/api/access-keys/${id}`, headers })).json();
    expect(after).toMatchObject({ routing: 'PlanWithFailover', resourceVersion: current.resourceVersion });
  });
});

describe('the admin facade accepts the good specs of the admission table', () => {
  it.each(expressible(goodSpecs))('%s', async (_name, c, _n, body) => {
    const response = await admin.app.inject({
      method: 'POST',
      url: `/admin/api/${paths[c.kind]}`,
      headers,
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(201);
  });
});
