import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { MessagesRequest } from '@ccproxy/core';
import { claudeCodeVersion, converseServiceRules, invokeModelBodyRules, SmithyValidator } from '@ccproxy/test-harness';
import { toInvokeModelBody } from '../../src/adapters/bedrock-invoke/request.ts';
import { toCountTokensRequest } from '../../src/adapters/bedrock/count-tokens.ts';
import { toConverseRequest } from '../../src/adapters/bedrock/request.ts';
import { toBedrockToolUseId } from '../../src/adapters/bedrock/tool-names.ts';
import { fixturesDir, slug, type Fixture } from '../claude-code/fixtures.ts';
import { rows } from '../claude-code/rows.ts';

/**
 * Every translation over the requests the pinned Claude Code version really sends (recorded by
 * the real-binary matrix, `RECORD_CLAUDE_FIXTURES=1 npx vitest run proxy/test/claude-code-matrix.test.ts`).
 * Bumping the pin without recording fails here (no folder for the new version), so a release that
 * changes a shape is caught by updating the pin. Each request must translate, pass the strict
 * Smithy + service-rule check, and keep what matters: tools, system, thinking, cache points, tool
 * ids and signatures, images and documents.
 *
 * `side-request-session-title.0.json` is the one side request Claude Code makes in `-p` mode (the
 * session title, asked with `output_config.format`): it sends it only with non-essential traffic
 * on, which the matrix never allows, so it was recorded once by hand with every outbound
 * connection refused by the harness's loopback sink; re-record it the same way on a pin bump.
 */
const pinned = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as {
    devDependencies: Record<string, string>;
  }
).devDependencies['@anthropic-ai/claude-code'];
const files = existsSync(fixturesDir) ? readdirSync(fixturesDir).filter((file) => file.endsWith('.json')) : [];
const load = (file: string) => JSON.parse(readFileSync(`${fixturesDir}${file}`, 'utf8')) as Fixture;
const validator = new SmithyValidator();

type Json = Record<string, unknown>;
const list = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
/** Every object nested anywhere in `value`, depth first. */
function objects(value: unknown): Json[] {
  if (Array.isArray(value)) return value.flatMap(objects);
  if (typeof value !== 'object' || value === null) return [];
  return [value as Json, ...Object.values(value).flatMap(objects)];
}
const blocksOf = (body: Json) =>
  list(body.messages).flatMap((message) =>
    typeof message.content === 'string' ? [] : list(message.content).flatMap((b) => [b, ...list(b.content)]),
  );

/** One translation of the Anthropic body per Bedrock API. */
const translations = [
  {
    name: 'Converse',
    check(fixture: Fixture) {
      const body = fixture.body as unknown as MessagesRequest;
      const { request } = toConverseRequest(body, fixture.headers['anthropic-beta']);
      const counting = fixture.path.startsWith('/v1/messages/count_tokens');
      const problems = counting
        ? validator.validate('CountTokensRequest', toCountTokensRequest(request))
        : validator.validate('ConverseStreamRequest', request);
      expect([...problems, ...converseServiceRules(request)]).toEqual([]);
      keepsWhatMatters(fixture.body, request as unknown as Json);
    },
  },
  {
    name: 'InvokeModel',
    check(fixture: Fixture) {
      // count_tokens goes to CountTokens (Converse-shaped) on both backends: checked above.
      if (fixture.path.startsWith('/v1/messages/count_tokens')) return;
      const body = fixture.body as unknown as MessagesRequest;
      const { body: invoke, dropped } = toInvokeModelBody(body, fixture.headers['anthropic-beta']);
      const payload = Buffer.from(JSON.stringify(invoke));
      const problems = validator.validateHttp('InvokeModelWithResponseStreamRequest', {
        labels: { modelId: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' },
        headers: { 'content-type': 'application/json', accept: 'application/vnd.amazon.eventstream' },
        payload,
      });
      expect([...problems, ...invokeModelBodyRules(invoke)]).toEqual([]);
      // The Anthropic body travels as it is: every field but model and stream (in the path) and
      // what Bedrock refuses (named in `dropped`, for the log), unchanged.
      const { model: _model, stream: _stream, ...rest } = fixture.body;
      for (const [field, value] of Object.entries(rest)) {
        // An empty tools list is no tools (Bedrock refuses an empty one).
        const empty = Array.isArray(value) && value.length === 0;
        if (dropped.includes(field) || (field === 'tools' && empty)) expect(invoke[field], field).toBeUndefined();
        else if (field !== 'messages' || !body.messages.some((m) => (m.role as string) === 'system'))
          expect(invoke[field], field).toEqual(value);
      }
    },
  },
];

function keepsWhatMatters(body: Json, request: Json): void {
  const tools = list(body.tools);
  const specs = list((request.toolConfig as Json | undefined)?.tools).flatMap((tool) =>
    tool.toolSpec === undefined ? [] : [tool.toolSpec as Json],
  );
  // Tools: every one, in order, with its schema (names fit Bedrock's 64 characters here).
  expect(specs.map((spec) => spec.name)).toEqual(tools.map((tool) => tool.name));
  expect(specs.map((spec) => (spec.inputSchema as Json).json)).toEqual(tools.map((tool) => tool.input_schema));
  // System: the same text in the same order.
  const systemText = (blocks: Json[]) =>
    blocks
      .map((block) => (typeof block.text === 'string' ? block.text : ''))
      .filter((text) => text.trim() !== '')
      .join('\n');
  const system = typeof body.system === 'string' ? [{ text: body.system }] : list(body.system);
  expect(systemText(list(request.system))).toBe(systemText(system));
  // Thinking: as asked, also the effort.
  const additional = (request.additionalModelRequestFields ?? {}) as Json;
  expect(additional.thinking).toEqual(body.thinking);
  // Cache points: one per cache_control the request carries.
  const marks = objects({ system: body.system, messages: body.messages, tools: body.tools }).filter(
    (o) => o.cache_control !== undefined && o.cache_control !== null,
  ).length;
  expect(objects(request).filter((o) => o.cachePoint !== undefined).length).toBe(marks);
  // Tool ids and thinking signatures: each one reaches Bedrock.
  const blocks = blocksOf(body);
  const converse = objects(request.messages);
  const useIds = converse.flatMap((o) => (o.toolUse === undefined ? [] : [(o.toolUse as Json).toolUseId]));
  const resultIds = converse.flatMap((o) => (o.toolResult === undefined ? [] : [(o.toolResult as Json).toolUseId]));
  const ids = (type: string, field: string) =>
    blocks.filter((b) => b.type === type).map((b) => toBedrockToolUseId(String(b[field])));
  expect(useIds).toEqual(ids('tool_use', 'id'));
  expect(resultIds).toEqual(ids('tool_result', 'tool_use_id'));
  const signatures = converse.flatMap((o) =>
    o.reasoningText === undefined ? [] : [(o.reasoningText as Json).signature],
  );
  expect(signatures).toEqual(blocks.filter((b) => b.type === 'thinking').map((b) => b.signature));
  // Images and documents: each one, as a Converse image / document.
  for (const kind of ['image', 'document'])
    expect(converse.filter((o) => o[kind] !== undefined).length, kind).toBe(
      blocks.filter((b) => b.type === kind).length,
    );
}

describe(`Claude Code ${claudeCodeVersion} request fixtures through every translation`, () => {
  it('the installed Claude Code is the exact pinned version, and its fixtures are recorded', () => {
    expect(pinned).toBe(claudeCodeVersion);
    expect(existsSync(fixturesDir), `${fixturesDir} is missing: record it (RECORD_CLAUDE_FIXTURES=1)`).toBe(true);
  });

  it('has a fixture for every row of the matrix', () => {
    const missing = rows.map((row) => slug(row.name)).filter((name) => !files.some((f) => f.startsWith(`${name}.`)));
    expect(missing).toEqual([]);
  });

  it('recorded nothing secret or machine-specific', () => {
    for (const file of files) {
      const text = readFileSync(`${fixturesDir}${file}`, 'utf8');
      expect(text, file).not.toMatch(/sk-ant-|ccproxy-matrix-|"x-api-key":|"authorization":/i);
    }
  });

  for (const translation of translations)
    for (const file of files)
      it(`${translation.name}: ${file}`, () => {
        translation.check(load(file));
      });
});
