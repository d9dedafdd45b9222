import { describe, expect, it } from 'vitest';
import { createLogger, type Queryable } from '@ccproxy/core';
import { SessionRecords } from '../src/session-records.ts';

/** Which database failures are "unreachable" (503) and which are a refused statement (500). */
const failing = (error: unknown): Queryable => ({ query: () => Promise.reject(error) });
const logger = createLogger({ level: 'silent' });

describe('session records: a database failure is a 503 only when the database could not answer', () => {
  it.each([
    ['pg read timeout', new Error('Query read timeout')],
    ['connection lost', new Error('Connection terminated unexpectedly')],
    ['refused socket', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['database closed', Object.assign(new Error('not accepting connections'), { code: '55000', severity: 'FATAL' })],
    ['statement timeout', Object.assign(new Error('canceling statement'), { code: '57014', severity: 'ERROR' })],
  ])('%s: 503 unavailable', async (_what, error) => {
    await expect(new SessionRecords(failing(error), logger).current('x')).rejects.toMatchObject({
      adminCode: 'ADM_UNAVAILABLE',
    });
  });

  it('a statement Postgres refused (a NUL in text: 22021) is a 500 internal, not "unreachable"', async () => {
    const error = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), {
      code: '22021',
      severity: 'ERROR',
    });
    const records = new SessionRecords(failing(error), logger);
    await expect(records.current('x')).rejects.toMatchObject({ adminCode: 'ADM_INTERNAL' });
    await expect(records.revoke('x', 'me')).rejects.toMatchObject({
      adminCode: 'ADM_INTERNAL',
      message: expect.not.stringContaining('unreachable'),
    });
  });
});
