import { describe, expect, it } from 'vitest';
import { isUsageRecord, parseSpool } from '../src/metering/usage-spool.ts';

const record = {
  requestId: 'r-1',
  occurredAt: 1_765_000_000_000,
  userId: '7',
  accessKeyId: '9',
  provider: 'bedrock',
  failover: true,
  modelRequested: 'claude-x',
  modelServed: null,
  inputTokens: 1,
  outputTokens: 2,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  latencyMs: 3.5,
  ttfbMs: null,
  status: 200,
  complete: false,
};
const line = (value: unknown) => `${JSON.stringify(value)}\n`;

describe('spool lines', () => {
  it('keeps whole records and reports every other non-blank line with its byte offset', () => {
    const parts = [
      line(record),
      '\n',
      line({ ...record, requestId: 'r-2' }).slice(0, 30) + line({ ...record, requestId: 'r-3' }),
      line({ ...record, requestId: 'r-4' }),
      line({ ...record, requestId: 'r-5' }).slice(0, -1),
    ];
    const { records, bad } = parseSpool(Buffer.from(parts.join('')));
    expect(records.map((r) => r.requestId)).toEqual(['r-1', 'r-4']);
    const offsetOf = (i: number) => Buffer.byteLength(parts.slice(0, i).join(''));
    // The last line parses as JSON but has no "\n": it was cut short, so it is not trusted.
    expect(bad.map((b) => b.offset)).toEqual([offsetOf(2), offsetOf(4)]);
    expect(bad[1]?.bytes.toString()).toBe(parts[4]);
  });

  it('refuses records the insert could not take (one would fail its whole batch forever)', () => {
    expect(isUsageRecord(record)).toBe(true);
    for (const change of [
      { requestId: '' },
      { requestId: 5 },
      { userId: 'abc' },
      { userId: 7 },
      { provider: 'openai' },
      { inputTokens: -1 },
      { outputTokens: 1.5 },
      { occurredAt: 'yesterday' },
      { status: '200' },
      { complete: 'yes' },
      { ttfbMs: 'x' },
    ])
      expect(isUsageRecord({ ...record, ...change }), JSON.stringify(change)).toBe(false);
    expect(isUsageRecord(null)).toBe(false);
    expect(isUsageRecord([1])).toBe(false);
  });
});
