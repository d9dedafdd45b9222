import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactKeyInUrl } from '@ccproxy/core';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('censors credentials wherever they appear in a log object', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination });
    logger.info(
      {
        req: { headers: { 'x-api-key': 'sk-ant-secret1', authorization: 'Bearer sk-ant-secret2' } },
        accessKey: 'ak_secret3',
        nested: { apiKey: 'secret4' },
      },
      'hello',
    );
    const text = lines.join('');
    for (const secret of ['sk-ant-secret1', 'sk-ant-secret2', 'ak_secret3', 'secret4'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it("censors secrets in child bindings, arrays and error fields, deeper than one level, without touching the caller's objects", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination });
    const upstream = {
      request: { headers: { Authorization: 'Bearer sk-ant-secret5', 'content-type': 'application/json' } },
    };
    const error = Object.assign(new Error('upstream refused'), {
      $response: { headers: { 'x-api-key': 'sk-ant-secret6' } },
    });
    logger
      .child({ token: 'secret7', headers: { authorization: 'secret9' } })
      .warn({ upstream, attempts: [{ password: 'secret8' }], err: error }, 'failed');
    const line = JSON.parse(lines.join('')) as { upstream: typeof upstream; err: { message: string; stack: string } };
    for (const secret of ['sk-ant-secret5', 'secret6', 'secret7', 'secret8', 'secret9'])
      expect(lines.join('')).not.toContain(secret);
    expect(line.upstream.request.headers).toEqual({ Authorization: '[redacted]', 'content-type': 'application/json' });
    expect(line).toMatchObject({ token: '[redacted]', headers: { authorization: '[redacted]' } });
    expect(line.err.message).toBe('upstream refused');
    expect(line.err.stack).toContain('logger.test.ts');
    expect(upstream.request.headers.Authorization).toBe('Bearer sk-ant-secret5');
    expect(error.$response.headers['x-api-key']).toBe('sk-ant-secret6');
  });

  it('writes lines without secrets unchanged', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).info({ route: 'messages', tokens: { input: 3, output: 5 }, list: [1, 'a'] }, 'done');
    expect(JSON.parse(lines.join(''))).toMatchObject({
      route: 'messages',
      tokens: { input: 3, output: 5 },
      list: [1, 'a'],
      msg: 'done',
    });
  });

  it('keeps only a short prefix of the access key in URLs', () => {
    const key = 'ak_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
    expect(redactKeyInUrl(`/ak/${key}/v1/messages?beta=true`)).toBe('/ak/ak_012…/v1/messages?beta=true');
    expect(redactKeyInUrl(`/ak/${key}`)).toBe('/ak/ak_012…');
    expect(redactKeyInUrl('/healthz')).toBe('/healthz');
  });

  it.each([
    ['/ak/k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6/v2/nothing', '/ak/k9;Qw7…/v2/nothing'],
    ['/AK/k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6/v2/nothing', '/AK/k9;Qw7…/v2/nothing'],
    ['//ak//k9#Qw7#Er5#Ty3#Ui1#Op0/v1/messages', '//ak//k9#Qw7…/v1/messages'],
    ['/ak/k9?Qw7?Er5?Ty3?Ui1?Op0/v1/messages?beta=true', '/ak/k9?Qw7…/v1/messages?beta=true'],
    ['/%61%4B%2Fk9%3BQw7%3BEr5/v1/messages', '/%61%4B…/v1/messages'],
    ['/ak/k9;Qw7,Er5=Ty3&Ui1;Op0', '/ak/k9;Qw7…'],
    ['/v1/messages?key=k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6', '/v1/messages?key=k9…'],
    ['/ak/x/v1/messages?beta=true', '/ak/x/v1/messages?beta=true'],
  ])('cuts the access-key segment whole, whatever its characters and spelling: %s', (url, logged) => {
    expect(redactKeyInUrl(url)).toBe(logged);
  });
});
