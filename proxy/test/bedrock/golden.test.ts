import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { MessagesRequest } from '@ccproxy/core';
import { converseServiceRules, SmithyValidator } from '@ccproxy/test-harness';
import { toConverseRequest } from '../../src/adapters/bedrock/request.ts';

/**
 * Golden translations of requests Claude Code really sent (captured through the test server,
 * device id zeroed): `<case>.request.json` → `<case>.converse.json`. Expectations are written only
 * when asked (`UPDATE_GOLDEN=1`, then review the diff): a missing one fails, so a golden test can
 * never pass by writing what it is about to compare. Every translation must also pass the strict
 * Smithy + service-rule check.
 */
const dir = fileURLToPath(new URL('../fixtures/claude-code/', import.meta.url));
const cases = readdirSync(dir)
  .filter((file) => file.endsWith('.request.json'))
  .map((file) => file.replace('.request.json', ''));
const validator = new SmithyValidator();

describe('golden: Claude Code requests → Converse', () => {
  it('has captured cases', () => expect(cases.length).toBeGreaterThanOrEqual(2));

  for (const name of cases) {
    it(name, () => {
      const { headers, body } = JSON.parse(readFileSync(`${dir}${name}.request.json`, 'utf8')) as {
        headers: { 'anthropic-beta'?: string };
        body: MessagesRequest;
      };
      const { request, dropped } = toConverseRequest(body, headers['anthropic-beta']);
      const actual = { request, dropped };
      const expectedFile = `${dir}${name}.converse.json`;
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
      expect(existsSync(expectedFile), `${expectedFile} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));
      expect([...validator.validate('ConverseStreamRequest', request), ...converseServiceRules(request)]).toEqual([]);
    });
  }
});
