import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAdmin, type LocalAdmin } from '../../admin/test/admin-fixture.ts';
import {
  adminConfig,
  ensureNamespace,
  installCrds,
  kubeRequest,
  uniqueName,
} from '../../operator/test/kube-fixture.ts';

/**
 * Item 11: the admin facade answers every bad input precisely, over real HTTP, with a real
 * manifests folder and the local operator behind it (and the real kube-apiserver for the CRDs):
 * control characters, absurd nesting, wrong content types, and an OpenAPI document that says
 * what the routes really do. Each refusal writes nothing and leaks nothing.
 */
let admin: LocalAdmin;
let url: string;
let authorization: string;

beforeAll(async () => {
  admin = await startLocalAdmin();
  url = await admin.app.listen({ port: 0, host: '127.0.0.1' });
  authorization = (await admin.auth()).authorization;
  await send('POST', '/admin/api/users', JSON.stringify({ namespace: 'team-a', name: 'alice' }));
}, 120_000);
afterAll(async () => admin?.close());

async function send(
  method: string,
  path: string,
  body?: string | FormData | Uint8Array<ArrayBuffer>,
  contentType?: string,
) {
  const headers: Record<string, string> = { authorization };
  if (contentType !== undefined) headers['content-type'] = contentType;
  else if (typeof body === 'string') headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text,
    json: () => JSON.parse(text),
  };
}

/** Every file the admin wrote into the manifests folder, concatenated. */
const manifests = async () => {
  const files = (await readdir(admin.manifestsDir, { recursive: true, withFileTypes: true })).filter((f) => f.isFile());
  return (await Promise.all(files.map((f) => readFile(`${f.parentPath}/${f.name}`, 'utf8')))).join('\n');
};

describe('11: control characters are refused with a 400 naming the field, and nothing is written', () => {
  const cases: Array<{ what: string; body: string; field: string }> = [
    {
      what: 'NUL in displayName',
      body: '{"namespace":"team-a","name":"u1","displayName":"a\\u0000b"}',
      field: 'body/displayName',
    },
    {
      what: 'tab in displayName',
      body: '{"namespace":"team-a","name":"u2","displayName":"a\\tb"}',
      field: 'body/displayName',
    },
    {
      what: 'newline in displayName',
      body: '{"namespace":"team-a","name":"u3","displayName":"a\\nb"}',
      field: 'body/displayName',
    },
    {
      what: 'C1 NEL in displayName',
      body: '{"namespace":"team-a","name":"u4","displayName":"a\\u0085b"}',
      field: 'body/displayName',
    },
    {
      what: 'DEL in description',
      body: '{"namespace":"team-a","name":"u5","description":"a\\u007fb"}',
      field: 'body/description',
    },
    {
      what: 'NUL in description',
      body: '{"namespace":"team-a","name":"u6","description":"a\\u0000"}',
      field: 'body/description',
    },
    {
      what: 'lone surrogate',
      body: '{"namespace":"team-a","name":"u7","displayName":"a\\ud800b"}',
      field: 'body/displayName',
    },
    { what: 'ESC in a name', body: '{"namespace":"team-a","name":"u8\\u001b"}', field: 'body/name' },
  ];
  for (const { what, body, field } of cases)
    it(what, async () => {
      const response = await send('POST', '/admin/api/users', body);
      expect(response.status, response.text).toBe(400);
      expect(response.type).toMatch(/^application\/json/);
      const error = response.json() as { error: string; problems: string[] };
      expect(error.error).toBe('bad_request');
      expect(error.problems.join('\n')).toContain(field);
      expect(await manifests()).not.toMatch(/name: u\d/);
    });

  it('a multi-line description is fine, and the operator reconciles it', async () => {
    const response = await send(
      'POST',
      '/admin/api/users',
      JSON.stringify({ namespace: 'team-a', name: 'multi', displayName: 'Multi Line', description: 'one\ntwo' }),
    );
    expect(response.status, response.text).toBe(201);
    expect((await admin.operator.sync()).problems).toEqual([]);
    const user = (await send('GET', '/admin/api/users/team-a%2Fmulti')).json() as {
      ready: string;
      description: string;
    };
    expect(user.description).toBe('one\ntwo');
    expect(user.ready).toBe('True');
  });

  it('in a modelMap key, an API key, a query string and an update too (every string field)', async () => {
    const key = await send(
      'POST',
      '/admin/api/access-keys',
      JSON.stringify({ namespace: 'team-a', name: 'k1', user: 'alice', bedrock: { modelMap: { 'a\u0000': 'b' } } }),
    );
    expect(key.status, key.text).toBe(400);
    expect(key.text).toContain('body/bedrock/modelMap');
    const value = await send(
      'POST',
      '/admin/api/access-keys',
      JSON.stringify({ namespace: 'team-a', name: 'k1', user: 'alice', bedrock: { model: 'm\u0007' } }),
    );
    expect(value.status, value.text).toBe(400);
    expect(value.text).toContain('body/bedrock/model');
    const query = await send('GET', '/admin/api/users?q=%00');
    expect(query.status, query.text).toBe(400);
    expect(query.text).toContain('querystring/q');
    const current = (await send('GET', '/admin/api/users/team-a%2Falice')).json() as { resourceVersion: string };
    const update = await send(
      'PUT',
      '/admin/api/users/team-a%2Falice',
      JSON.stringify({ resourceVersion: current.resourceVersion, displayName: '\u009b31m' }),
    );
    expect(update.status, update.text).toBe(400);
    expect(update.text).toContain('body/displayName');
    expect(await manifests()).not.toContain('k1');
    expect((await admin.operator.sync()).problems).toEqual([]);
  });
});

describe('11: the CRDs refuse the same text at the real kube-apiserver', () => {
  it('a ProxyUser with NUL or a newline in displayName is refused; a multi-line description is not', async () => {
    const kube = adminConfig();
    await installCrds(kube);
    const namespace = uniqueName('adv11');
    await ensureNamespace(kube, namespace);
    const create = (name: string, spec: Record<string, unknown>) =>
      kubeRequest(
        kube,
        'POST',
        `/apis/ccproxy.io/v1alpha1/namespaces/${namespace}/proxyusers`,
        JSON.stringify({ apiVersion: 'ccproxy.io/v1alpha1', kind: 'ProxyUser', metadata: { name }, spec }),
      );
    const nul = await create('nul', { displayName: 'a\u0000b' });
    expect(nul.status, nul.body).toBe(422);
    expect(nul.body).toContain('spec.displayName');
    const newline = await create('newline', { displayName: 'a\nb' });
    expect(newline.status, newline.body).toBe(422);
    const c1 = await create('c1', { description: 'x\u0085' });
    expect(c1.status, c1.body).toBe(422);
    expect((await create('fine', { displayName: 'Fine', description: 'one\ntwo' })).status).toBe(201);
    const key = await kubeRequest(
      kube,
      'POST',
      `/apis/ccproxy.io/v1alpha1/namespaces/${namespace}/accesskeys`,
      JSON.stringify({
        apiVersion: 'ccproxy.io/v1alpha1',
        kind: 'AccessKey',
        metadata: { name: 'k' },
        spec: { userRef: { name: 'fine' }, secretName: 'k-key', bedrock: { modelMap: { 'a\u0000': 'b' } } },
      }),
    );
    expect(key.status, key.body).toBe(422);
    expect(key.body).toContain('modelMap');
  }, 60_000);
});

describe('11: nesting and size', () => {
  it('a 10,000-deep JSON array is a 400, not a 500, and the server lives on', async () => {
    for (const body of ['['.repeat(10_000) + ']'.repeat(10_000), '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)]) {
      const response = await send('POST', '/admin/api/users', body);
      expect(response.status, response.text.slice(0, 300)).toBe(400);
      expect(response.json()).toMatchObject({ error: 'bad_request', problems: ['body: nested deeper than 32 levels'] });
    }
    const deepInField = `{"namespace":"team-a","name":"deep","displayName":${'['.repeat(40)}${']'.repeat(40)}}`;
    expect((await send('POST', '/admin/api/users', deepInField)).status).toBe(400);
    // Brackets inside strings are text, not nesting.
    const bracketText = await send(
      'POST',
      '/admin/api/users',
      JSON.stringify({ namespace: 'team-a', name: 'brackets', displayName: '['.repeat(150) }),
    );
    expect(bracketText.status, bracketText.text).toBe(201);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(admin.logs.join('\n')).not.toMatch(/Maximum call stack|RangeError/);
  });

  it('a body over the limit is a 413 in the error shape', async () => {
    const response = await send(
      'POST',
      '/admin/api/users',
      JSON.stringify({ namespace: 'team-a', name: 'big', description: 'x'.repeat(70_000) }),
    );
    expect(response.status).toBe(413);
    expect(response.json()).toMatchObject({ statusCode: 413, error: 'payload_too_large' });
  });
});

describe('11: content types', () => {
  const user = JSON.stringify({ namespace: 'team-a', name: 'ct' });
  it('text/plain, a missing type and multipart bodies are 415 JSON answers; nothing is written', async () => {
    const form = new FormData();
    form.set('namespace', 'team-a');
    for (const response of [
      await send('POST', '/admin/api/users', user, 'text/plain'),
      // Bytes without a Content-Type header at all (fetch adds none for them).
      await send('POST', '/admin/api/users', new TextEncoder().encode(user)),
      await send('POST', '/admin/api/users', user, ''),
      await send('POST', '/admin/api/users', form, undefined),
      await send('PUT', '/admin/api/users/team-a%2Falice', user, 'application/x-www-form-urlencoded'),
    ]) {
      expect(response.status, response.text).toBe(415);
      expect(response.type).toMatch(/^application\/json/);
      expect(response.json()).toMatchObject({ statusCode: 415, error: 'unsupported_media_type' });
    }
    expect(await manifests()).not.toContain('name: ct');
  });

  it('DELETE works without a body whatever its Content-Type (react-admin sends text/plain)', async () => {
    for (const [name, type] of [
      ['del-a', 'text/plain'],
      ['del-b', undefined],
      ['del-c', 'application/json'],
    ] as const) {
      expect((await send('POST', '/admin/api/users', JSON.stringify({ namespace: 'team-a', name }))).status).toBe(201);
      const headers: Record<string, string> = {
        authorization,
        ...(type === undefined ? {} : { 'content-type': type }),
      };
      const response = await fetch(`${url}/admin/api/users/team-a%2F${name}`, { method: 'DELETE', headers });
      expect(response.status, await response.clone().text()).toBe(200);
      expect(((await response.json()) as { name: string }).name).toBe(name);
      expect((await send('GET', `/admin/api/users/team-a%2F${name}`)).status).toBe(404);
    }
  });
});

describe('11: an optional body is absent or right, never null', () => {
  // Found by schemathesis's stateful phase: `null` passed as "no body" and revoked the key (200).
  it('a JSON null body on revoke or rotate is a 400 and changes nothing; no body at all works', async () => {
    expect(
      (
        await send(
          'POST',
          '/admin/api/access-keys',
          JSON.stringify({ namespace: 'team-a', name: 'nul', user: 'alice' }),
        )
      ).status,
    ).toBe(201);
    for (const action of ['revoke', 'rotate']) {
      const refused = await send('POST', `/admin/api/access-keys/team-a%2Fnul/${action}`, 'null');
      expect(refused.status, refused.text).toBe(400);
      expect(refused.json()).toMatchObject({ error: expect.any(String) });
    }
    expect((await send('GET', '/admin/api/access-keys/team-a%2Fnul')).json()).toMatchObject({ revoked: false });
    const revoked = await send('POST', '/admin/api/access-keys/team-a%2Fnul/revoke');
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json()).toMatchObject({ revoked: true });
  });
});

describe('11: the OpenAPI document is true', () => {
  it('bedrock.modelMap (a defaulted field) is optional in the document and in fact', async () => {
    const doc = (await (await fetch(`${url}/admin/openapi.json`)).json()) as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>
      >;
    };
    const body = doc.paths['/admin/api/access-keys']?.post?.requestBody?.content['application/json']?.schema as {
      properties: { bedrock: { required?: string[] } };
    };
    expect(body.properties.bedrock.required ?? []).not.toContain('modelMap');
    expect(body.properties.bedrock.required ?? []).not.toContain('api');
    const created = await send(
      'POST',
      '/admin/api/access-keys',
      JSON.stringify({
        namespace: 'team-a',
        name: 'no-map',
        user: 'alice',
        bedrock: { model: 'anthropic.claude-m-v1:0' },
      }),
    );
    expect(created.status, created.text).toBe(201);
    // api has no default: unset, the BedrockKey's spec.api (else InvokeModel) decides when the proxy reads the key.
    expect(created.json()).toMatchObject({ bedrock: { modelMap: {}, model: 'anthropic.claude-m-v1:0' } });
    expect((created.json() as { bedrock: object }).bedrock).not.toHaveProperty('api');
  });

  it('an unserved method on a served path is a 405 with Allow; query values are typed strictly', async () => {
    for (const method of ['PATCH', 'QUERY']) {
      const response = await fetch(`${url}/admin/api/users`, { method, headers: { authorization } });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD, POST');
      expect(await response.json()).toMatchObject({ statusCode: 405, error: 'method_not_allowed' });
    }
    expect((await send('POST', '/admin/api/nowhere', '{}')).status).toBe(404);
    // `true` is not a number (typebox's Convert read it as 1), nor `1` a boolean.
    for (const query of ['_start=true', '_end=1e3', 'suspended=1', '_sort=secretField']) {
      const response = await send('GET', `/admin/api/users?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.text, query).toContain(`querystring/${query.split('=')[0]}`);
    }
    expect((await send('GET', '/admin/api/users?_start=0&_end=5&suspended=false&_sort=name')).status).toBe(200);
  });

  it('every operation declares its success and the error statuses it can answer, with the error schema', async () => {
    const doc = (await (await fetch(`${url}/admin/openapi.json`)).json()) as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>
      >;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ path, method, op })),
    );
    expect(operations.length).toBeGreaterThan(15);
    for (const { path, method, op } of operations) {
      const statuses = Object.keys(op.responses);
      const where = `${method} ${path}: ${statuses.join(',')}`;
      expect(
        statuses.some((s) => s.startsWith('2')),
        where,
      ).toBe(true);
      expect(statuses, where).toContain('500');
      if (path.startsWith('/admin/api/'))
        expect(statuses, where).toEqual(expect.arrayContaining(['400', '401', '503']));
      if (path.includes('{id}')) expect(statuses, where).toContain('404');
      if (method !== 'get') expect(statuses, where).toEqual(expect.arrayContaining(['413', '415']));
      expect(JSON.stringify(op.responses['500']), where).toContain('statusCode');
    }
  });
});
