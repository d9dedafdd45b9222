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
    logger.info({ req: { headers: { 'x-api-key': 'sk-ant-secret1', authorization: 'Bearer sk-ant-secret2' } }, accessKey: 'ak_secret3', nested: { apiKey: 'secret4' } }, 'hello');
    const text = lines.join('');
    for (const secret of ['sk-ant-secret1', 'sk-ant-secret2', 'ak_secret3', 'secret4']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('keeps only a short prefix of the access key in URLs', () => {
    const key = 'ak_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
    expect(redactKeyInUrl(`/ak/${key}/v1/messages?beta=true`)).toBe('/ak/ak_012…/v1/messages?beta=true');
    expect(redactKeyInUrl(`/ak/${key}`)).toBe('/ak/ak_012…');
    expect(redactKeyInUrl('/healthz')).toBe('/healthz');
  });
});
