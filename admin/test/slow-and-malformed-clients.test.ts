import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * Clients that stall or send what fastify answers before any hook runs, spoken to over real
 * sockets: every answer is the admin's one JSON error shape with the security headers every other
 * page carries, and no client holds a connection for longer than the (here shortened) limits.
 */
const headersTimeoutMs = 500;
const requestTimeoutMs = 1_000;
/** Node checks pending requests every half second here; the rest is scheduling slack. */
const slackMs = 1_500;

let admin: LocalAdmin;
/** A built UI's shape, so @fastify/static serves `/*` as in production (the real build may be absent). */
let uiDir: string;
let port: number;
let authorization: string;
/** The security headers of an ordinary answer (GET /healthz), which every error answer must carry too. */
let securityHeaders: Record<string, string>;

beforeAll(async () => {
  uiDir = await mkdtemp(join(tmpdir(), 'ccproxy-admin-ui-'));
  await mkdir(join(uiDir, 'assets'));
  await writeFile(join(uiDir, 'index.html'), '<!doctype html><title>admin</title>');
  await writeFile(join(uiDir, 'assets', 'index-0123abcd.js'), 'export {};');
  admin = await startLocalAdmin({ requestHeadersTimeoutMs: headersTimeoutMs, requestTimeoutMs, uiDir });
  await admin.app.listen({ port: 0, host: '127.0.0.1' });
  port = (admin.app.server.address() as AddressInfo).port;
  authorization = (await admin.auth()).authorization;
  const ordinary = await fetch(`http://127.0.0.1:${port}/healthz`);
  const perAnswer = new Set(['date', 'content-length', 'content-type', 'connection', 'keep-alive']);
  securityHeaders = Object.fromEntries([...ordinary.headers].filter(([name]) => !perAnswer.has(name)));
  expect(securityHeaders).toHaveProperty('content-security-policy');
});
afterAll(async () => {
  await admin?.close();
  await rm(uiDir, { recursive: true, force: true });
});

interface RawAnswer {
  raw: string;
  status: number;
  headers: Record<string, string>;
  body: { statusCode?: number; error?: string; message?: string };
  /** The server closed the connection within the wait. */
  closed: boolean;
  ms: number;
}

/** Writes `request` on a fresh socket and collects what comes back until the server closes it (or `waitMs`). */
function exchange(request: string, waitMs = requestTimeoutMs + slackMs + 2_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parse(Buffer.concat(chunks).toString('latin1'), closed, Date.now() - started));
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

function parse(raw: string, closed: boolean, ms: number): RawAnswer {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const text = rest.join('\r\n\r\n');
  let body: RawAnswer['body'] = {};
  try {
    body = JSON.parse(text) as RawAnswer['body'];
  } catch {
    // Not JSON: the expectations on `body` say so.
  }
  return { raw, status: Number(statusLine.split(' ')[1] ?? 0), headers, body, closed, ms };
}

function expectAdminError(answer: RawAnswer, status: number, error: string, mentions: string): void {
  expect(answer.status, answer.raw).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(answer.body).toEqual({ statusCode: status, error, message: expect.stringContaining(mentions) });
  expect(answer.headers).toMatchObject(securityHeaders);
}

const post = (path: string, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: 100\r\n${extra}\r\n{"namespace":`;

describe('admin facade: a stalled request is answered 408 in bounded time and its connection closed', () => {
  it.each([
    ['/admin/api/users', 'with a session'],
    ['/admin/auth/login', 'unauthenticated'],
  ])('a body that stops arriving at POST %s (%s) gets a 408 within the request timeout', async (path) => {
    const answer = await exchange(post(path, `Authorization: ${authorization}\r\n`));
    expectAdminError(answer, 408, 'request_timeout', 'body stopped arriving');
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeLessThan(requestTimeoutMs + slackMs);
  });

  it.each([
    ['headers that stop arriving', 'GET /healthz HTTP/1.1\r\nHost: admin\r\n'],
    ['a connection that sends nothing', ''],
  ])('%s: a 408 within the headers timeout', async (_name, request) => {
    const answer = await exchange(request);
    expectAdminError(answer, 408, 'request_timeout', 'headers were not complete');
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeLessThan(headersTimeoutMs + slackMs);
  });

  it('a body still unsent after its request was answered (401) gets no second answer, only a closed connection', async () => {
    const answer = await exchange(post('/admin/api/users'));
    expect(answer.status, answer.raw).toBe(401);
    expect(answer.raw.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(answer.closed).toBe(true);
    expect(answer.ms).toBeLessThan(requestTimeoutMs + slackMs);
  });
});

describe('admin facade: what fastify and Node answer before any hook is in the admin error shape', () => {
  it.each(['/admin/api/users/%', '/%', '/admin/auth/login%', '/assets/%zz'])(
    'GET %s (bad percent-encoding) is a 400 bad_request that does not echo the path',
    async (path) => {
      const answer = await exchange(`GET ${path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n`);
      expectAdminError(answer, 400, 'bad_request', 'URL is malformed');
      expect(answer.body.message).not.toContain(path);
    },
  );

  it('request headers over 16 KiB are a 431 headers_too_large, and the connection is closed', async () => {
    const answer = await exchange(`GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    expectAdminError(answer, 431, 'headers_too_large', '16 KiB');
    expect(answer.closed).toBe(true);
  });

  it.each([
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: admin\r\nBad Header\r\n\r\n', 'header'],
    [
      'Content-Length with Transfer-Encoding',
      'POST /admin/auth/login HTTP/1.1\r\nHost: admin\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'Transfer-Encoding',
    ],
    ['an unknown method', 'FROB /healthz HTTP/1.1\r\nHost: admin\r\n\r\n', 'method'],
  ])(
    '%s is a 400 bad_request saying what was wrong, and the connection is closed',
    async (_name, request, mentions) => {
      const answer = await exchange(request);
      expectAdminError(answer, 400, 'bad_request', mentions);
      expect(answer.closed).toBe(true);
    },
  );
});

describe('admin facade: a CONNECT (a tunnel request) is answered, not dropped', () => {
  it('CONNECT is a 405 method_not_allowed in the admin error shape, and the connection is closed', async () => {
    const answer = await exchange('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expectAdminError(answer, 405, 'method_not_allowed', 'CONNECT');
    expect(answer.closed).toBe(true);
  });
});

describe("admin facade: @fastify/static's refusals carry a code whose status and name agree", () => {
  it.each(['/admin/api//users', '/admin//api/users', '/admin/api/users%00'])(
    'GET %s is a 404 not_found naming the problem, not a 403 bad_request',
    async (path) => {
      const answer = await exchange(
        `GET ${path} HTTP/1.1\r\nHost: admin\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`,
      );
      expectAdminError(answer, 404, 'not_found', 'not in normal form');
    },
  );

  it('a Range the file cannot satisfy is a 400 bad_request saying so, not a 416 named bad_request', async () => {
    const answer = await exchange(
      'GET /index.html HTTP/1.1\r\nHost: admin\r\nRange: bytes=99999-\r\nConnection: close\r\n\r\n',
    );
    expectAdminError(answer, 400, 'bad_request', 'Range Not Satisfiable');
  });
});

describe('an over-long path segment, with the UI built (its `/*` route matches any path)', () => {
  const long = 'a'.repeat(3_000);
  it.each([
    ['a resource id', `/admin/api/users/${long}`],
    ['a segment under no route', `/admin/api/nothing/${long}`],
    ['a path under /admin/', `/admin/${long}`],
    ['a UI path', `/${long}`],
    ['a UI asset', `/assets/${long}.js`],
  ])('%s is a 414 uri_too_long, not a 404 from the static files', async (_name, url) => {
    const response = await admin.app.inject({ method: 'GET', url, headers: { authorization } });
    expect(response.statusCode).toBe(414);
    expect(response.json()).toEqual({
      statusCode: 414,
      error: 'uri_too_long',
      message: 'A path segment is longer than 2048 characters.',
    });
    expect(response.headers).toMatchObject(securityHeaders);
  });

  it('a segment at the limit is still judged by its route (404 for an id nobody has)', async () => {
    const response = await admin.app.inject({
      method: 'GET',
      url: `/admin/api/users/${'a'.repeat(2_048)}`,
      headers: { authorization },
    });
    expect(response.statusCode).not.toBe(414);
    expect(response.statusCode).toBeLessThan(500);
  });
});

describe('admin facade without the UI (no `/*` route to fall back on)', () => {
  let bare: LocalAdmin;
  beforeAll(async () => {
    bare = await startLocalAdmin({ uiDir: join(tmpdir(), 'ccproxy-admin-no-ui') });
  });
  afterAll(async () => bare?.close());

  it('a path parameter over the router limit is a 414 uri_too_long that does not echo it', async () => {
    const id = 'a'.repeat(3_000);
    const response = await bare.app.inject({
      method: 'GET',
      url: `/admin/api/users/${id}`,
      headers: { authorization },
    });
    expect(response.statusCode).toBe(414);
    expect(response.json()).toEqual({
      statusCode: 414,
      error: 'uri_too_long',
      message: expect.stringContaining('longer than'),
    });
    expect(response.body).not.toContain(id);
    expect(response.headers).toMatchObject(securityHeaders);
  });
});
