import { describe, expect, it } from 'vitest';
import { toPlanRequest } from '../src/adapters/anthropic/request.ts';
import { routeLabel } from '../src/metrics.ts';

const pairs = (headers: string[]) => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < headers.length; i += 2) out.push([headers[i] as string, headers[i + 1] as string]);
  return out;
};

describe('toPlanRequest', () => {
  const raw = [
    'Host',
    '127.0.0.1:8080',
    'Connection',
    'keep-alive, X-Hop',
    'X-Hop',
    'drop me',
    'Content-Type',
    'application/json',
    'Content-Length',
    '999',
    'Transfer-Encoding',
    'chunked',
    'X-Api-Key',
    'sk-ant-client',
    'anthropic-version',
    '2023-06-01',
    'anthropic-beta',
    'claude-code-20250219,interleaved-thinking-2025-05-14',
    'X-Claude-Code-Session-Id',
    'abc',
    'Keep-Alive',
    'timeout=5',
    'Proxy-Authorization',
    'Basic eA==',
  ];
  const headers = { connection: 'keep-alive, X-Hop', 'x-api-key': 'sk-ant-client' };

  it('keeps end-to-end headers in order and case, drops hop-by-hop ones, sets the real body length', () => {
    const plan = toPlanRequest('/v1/messages?beta=true', raw, headers, 42, undefined);
    expect(plan.path).toBe('/v1/messages?beta=true');
    expect(pairs(plan.headers)).toEqual([
      ['Content-Type', 'application/json'],
      ['X-Api-Key', 'sk-ant-client'],
      ['anthropic-version', '2023-06-01'],
      ['anthropic-beta', 'claude-code-20250219,interleaved-thinking-2025-05-14'],
      ['X-Claude-Code-Session-Id', 'abc'],
      ['content-length', '42'],
    ]);
  });

  it('never overrides a credential the client sent', () => {
    const plan = toPlanRequest('/v1/messages', raw, headers, 1, 'sk-ant-default');
    expect(plan.headers).not.toContain('sk-ant-default');
    const bearer = toPlanRequest(
      '/v1/messages',
      ['Authorization', 'Bearer tok'],
      { authorization: 'Bearer tok' },
      1,
      'sk-ant-default',
    );
    expect(pairs(bearer.headers)).toEqual([
      ['Authorization', 'Bearer tok'],
      ['content-length', '1'],
    ]);
  });

  it('injects the default Plan key only when the client sent none', () => {
    const plan = toPlanRequest('/v1/messages', ['Content-Type', 'application/json'], {}, 2, 'sk-ant-default');
    expect(pairs(plan.headers)).toContainEqual(['x-api-key', 'sk-ant-default']);
  });

  it("drops the headers each request's own connection header lists, whatever the one before listed", () => {
    const names = (connection: string | undefined) =>
      pairs(
        toPlanRequest(
          '/v1/messages',
          ['Connection', connection ?? '', 'X-A', 'a', 'X-B', 'b', 'Keep-Alive', 'timeout=5'],
          connection === undefined ? {} : { connection },
          0,
          undefined,
        ).headers,
      ).map(([name]) => name);
    expect(names('keep-alive, X-A')).toEqual(['X-B']);
    expect(names('X-B')).toEqual(['X-A']);
    expect(names('X-B')).toEqual(['X-A']);
    expect(names('keep-alive')).toEqual(['X-A', 'X-B']);
    expect(names(' x-a , , X-B ')).toEqual([]);
    expect(names('close')).toEqual(['X-A', 'X-B']);
  });

  it('sends no content-length for an empty body', () => {
    const plan = toPlanRequest('/v1/models', ['Accept', '*/*'], {}, 0, undefined);
    expect(pairs(plan.headers)).toEqual([['Accept', '*/*']]);
  });
});

describe('routeLabel', () => {
  it.each([
    ['/v1/messages', 'messages'],
    ['/v1/messages?beta=true', 'messages'],
    ['/v1/messages/count_tokens', 'count_tokens'],
    ['/v1/messages/count_tokens?beta=true', 'count_tokens'],
    ['/v1/messagesx', 'other'],
    ['/v1/messages/count_tokensx?beta=true', 'other'],
    ['/v1/messages/batches', 'other'],
    ['/v1/models', 'other'],
    ['/v1/message', 'other'],
  ])('%s → %s', (path, label) => {
    expect(routeLabel(path)).toBe(label);
  });
});
