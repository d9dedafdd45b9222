import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ClaudeRun, ModelScript, ModelTurn } from '@ccproxy/test-harness';
import { pdf, png } from './files.ts';
import type { CellContext, Row, Seen } from './matrix.ts';

/** The user saw `text` as the session's result, and no error. */
export function answered(run: ClaudeRun, text: string | RegExp): void {
  expect(run.result, `no result line; stderr: ${run.stderr.slice(0, 500)}`).toBeDefined();
  expect(run.result?.is_error, JSON.stringify(run.result)).toBe(false);
  expect(run.exitCode).toBe(0);
  // Nothing beyond loopback: no telemetry, feature flags or update checks reached for the internet.
  expect(run.outbound).toEqual([]);
  if (typeof text === 'string') expect(run.result?.result).toBe(text);
  else expect(run.result?.result).toMatch(text);
}

/** Every turn of the cell reached the column's upstream as its streaming operation; `turns` of them. */
export function served(seen: Seen[], cell: CellContext, turns: number): void {
  expect(seen.map((request) => request.operation)).toEqual(Array(turns).fill(cell.column.streamOperation));
}

/** The thinking configuration the upstream received (Messages `thinking`, Converse's additional fields). */
export function thinkingOf(turn: ModelTurn | undefined): Record<string, unknown> | undefined {
  if (turn === undefined) return undefined;
  const body = turn.body as { thinking?: object; additionalModelRequestFields?: { thinking?: object } };
  return (turn.wire === 'messages' ? body.thinking : body.additionalModelRequestFields?.thinking) as
    Record<string, unknown> | undefined;
}

export function toolNamesOf(turn: ModelTurn | undefined): string[] {
  if (turn === undefined) return [];
  const body = turn.body as {
    tools?: Array<{ name: string }>;
    toolConfig?: { tools?: Array<{ toolSpec?: { name: string } }> };
  };
  return turn.wire === 'messages'
    ? (body.tools ?? []).map((tool) => tool.name)
    : (body.toolConfig?.tools ?? []).flatMap((tool) => (tool.toolSpec === undefined ? [] : [tool.toolSpec.name]));
}

const text =
  (value: string): ModelScript =>
  () => ({ content: [{ type: 'text', text: value }] });

/** Calls `name` with `input` on the first step; answers with what the tool results held afterwards. */
function toolThen(
  calls: Array<{ id: string; name: string; input: Record<string, unknown> }>,
  answer: (turn: ModelTurn) => string,
  thinking?: { signature: string },
): ModelScript {
  return (turn) =>
    turn.toolResults.length === 0
      ? {
          content: [
            ...(thinking === undefined
              ? []
              : [{ type: 'thinking' as const, thinking: 'Plan: run it.', signature: thinking.signature }]),
            ...calls.map((call) => ({ type: 'tool_use' as const, ...call })),
          ],
        }
      : { content: [{ type: 'text', text: answer(turn) }] };
}

/** Fails the cell's first request with `failure`, answers every later one. */
function failOnce(failure: 'rate_limit' | 'overloaded', answer: string): ModelScript {
  let failed = false;
  return () => {
    if (failed) return { content: [{ type: 'text', text: answer }] };
    failed = true;
    return { fail: failure };
  };
}

const toolId = (cell: CellContext, n = 1) => `toolu_${cell.id.replace(/[^\w]/g, '_')}_${n}`;

function thinkingRow(name: string, args: string[], expected: Record<string, unknown>): Row {
  return {
    name,
    prompt: 'think, then run a command',
    args,
    script: (cell) =>
      toolThen(
        [{ id: toolId(cell), name: 'Bash', input: { command: 'echo thought', description: 'Echo' } }],
        (turn) => (turn.signatures.includes(`sig-${cell.id}`) ? 'Thought, ran: thought' : 'signature not replayed'),
        { signature: `sig-${cell.id}` },
      ),
    check(run, seen, cell) {
      answered(run, 'Thought, ran: thought');
      served(seen, cell, 2);
      expect(thinkingOf(seen[0]?.turn)).toMatchObject(expected);
      expect(seen[1]?.turn.signatures).toEqual([`sig-${cell.id}`]);
      expect(seen[1]?.turn.toolResults.map((result) => result.id)).toEqual([toolId(cell)]);
    },
  };
}

/** The rows of the real-binary matrix (the list), each one `claude -p` per column. */
export const rows: Row[] = [
  {
    name: 'text',
    prompt: 'say something',
    script: () => text('Plain answer.'),
    check(run, seen, cell) {
      answered(run, 'Plain answer.');
      served(seen, cell, 1);
    },
  },
  {
    name: 'streaming (partial messages)',
    prompt: 'stream something',
    args: ['--include-partial-messages'],
    script: () => text('Streamed in several pieces.'),
    check(run, seen, cell) {
      answered(run, 'Streamed in several pieces.');
      const deltas = run.events.flatMap((event) =>
        event.type === 'stream_event' && event.event?.delta?.type === 'text_delta' ? [event.event.delta.text] : [],
      );
      expect(deltas.length).toBeGreaterThan(1);
      expect(deltas.join('')).toBe('Streamed in several pieces.');
      served(seen, cell, 1);
    },
  },
  {
    name: 'Bash tool round trip',
    prompt: 'run the command',
    async setup(cell) {
      await writeFile(join(cell.cwd, 'marker.txt'), 'seen-by-claude\n');
    },
    script: (cell) =>
      toolThen(
        [
          {
            id: toolId(cell),
            name: 'Bash',
            input: { command: `echo tok-${cell.id} && cat marker.txt`, description: 'Run' },
          },
        ],
        (turn) => `Tool said: ${turn.toolResults[0]?.text.trim() ?? ''}`,
      ),
    check(run, seen, cell) {
      answered(run, `Tool said: tok-${cell.id}\nseen-by-claude`);
      expect(run.toolResults).toEqual([
        { tool_use_id: toolId(cell), is_error: false, content: `tok-${cell.id}\nseen-by-claude` },
      ]);
      served(seen, cell, 2);
      expect(seen[1]?.turn.toolUses).toEqual([toolId(cell)]);
      expect(seen[1]?.turn.toolResults.map((result) => result.id)).toEqual([toolId(cell)]);
    },
  },
  {
    name: 'parallel tool calls',
    prompt: 'run both commands',
    script: (cell) =>
      toolThen(
        [1, 2].map((n) => ({
          id: toolId(cell, n),
          name: 'Bash',
          input: { command: `echo part-${n}`, description: `Part ${n}` },
        })),
        (turn) =>
          turn.toolResults
            .map((result) => result.text.trim())
            .sort()
            .join(' + '),
      ),
    check(run, seen, cell) {
      answered(run, 'part-1 + part-2');
      expect(run.toolResults.map((result) => result.tool_use_id).sort()).toEqual([toolId(cell, 1), toolId(cell, 2)]);
      served(seen, cell, 2);
      // Both results come back in one user turn (in the order the tools finished), each with its call's id.
      expect(seen[1]?.turn.toolResults.map((result) => result.id).sort()).toEqual([toolId(cell, 1), toolId(cell, 2)]);
    },
  },
  thinkingRow('thinking (adaptive), signature replayed', [], { type: 'adaptive' }),
  thinkingRow('thinking (enabled), signature replayed', ['--model', 'claude-sonnet-4-5-20250929'], {
    type: 'enabled',
    budget_tokens: expect.any(Number),
  }),
  {
    name: 'images (Read of a PNG)',
    prompt: 'look at pic.png',
    async setup(cell) {
      await writeFile(join(cell.cwd, 'pic.png'), png());
    },
    script: (cell) =>
      toolThen([{ id: toolId(cell), name: 'Read', input: { file_path: join(cell.cwd, 'pic.png') } }], (turn) =>
        turn.toolResults[0]?.kinds.includes('image') ? 'saw an image' : `no image: ${turn.toolResults[0]?.kinds}`,
      ),
    check(run, seen, cell) {
      answered(run, 'saw an image');
      served(seen, cell, 2);
    },
  },
  {
    name: 'PDF (Read of a PDF)',
    prompt: 'read report.pdf',
    async setup(cell) {
      await writeFile(join(cell.cwd, 'report.pdf'), pdf('Quarterly figures: 42'));
    },
    script: (cell) =>
      toolThen([{ id: toolId(cell), name: 'Read', input: { file_path: join(cell.cwd, 'report.pdf') } }], (turn) =>
        turn.attachments.includes('document') ? 'read the PDF' : `no document: ${turn.attachments}`,
      ),
    check(run, seen, cell) {
      answered(run, 'read the PDF');
      served(seen, cell, 2);
      // Claude Code 2.1 sends the PDF as a document block beside the tool result, not inside it.
      expect(seen[1]?.turn.toolResults.map((result) => result.id)).toEqual([toolId(cell)]);
    },
  },
  {
    name: 'citations',
    prompt: 'what does the report say?',
    args: ['--include-partial-messages'],
    script: () => () => ({
      content: [
        { type: 'text', text: 'The report says 42.', citations: [{ cited_text: '42', document_title: 'report' }] },
      ],
    }),
    check(run, seen, cell) {
      answered(run, 'The report says 42.');
      // Claude Code 2.1 keeps no citations on its assistant message; the user sees them as stream events.
      const citations = run.events.flatMap((event) =>
        event.type === 'stream_event' && event.event?.delta?.type === 'citations_delta'
          ? [(event.event.delta as { citation?: unknown }).citation]
          : [],
      );
      expect(citations).toEqual([expect.objectContaining({ cited_text: '42', document_title: 'report' })]);
      served(seen, cell, 1);
    },
  },
  {
    name: 'structured output (--json-schema)',
    prompt: 'answer in the schema',
    args: [
      '--json-schema',
      JSON.stringify({ type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] }),
    ],
    script: (cell) =>
      toolThen([{ id: toolId(cell), name: 'StructuredOutput', input: { answer: 'forty-two' } }], () => 'Done.'),
    check(run, seen, cell) {
      expect(run.result?.is_error).toBe(false);
      expect(run.result?.structured_output).toEqual({ answer: 'forty-two' });
      // Claude Code 2.1 asks for structured output with a StructuredOutput tool, not `output_config.format`.
      expect(toolNamesOf(seen[0]?.turn)).toContain('StructuredOutput');
      expect(seen[0]?.turn.body ?? {}).not.toHaveProperty('output_config.format');
      expect(seen.length).toBeGreaterThanOrEqual(1);
      expect(seen.every((request) => request.operation === cell.column.streamOperation)).toBe(true);
    },
  },
  {
    name: 'prompt caching (usage reported)',
    prompt: 'answer from cache',
    script: () => () => ({
      content: [{ type: 'text', text: 'cached answer' }],
      usage: { cacheRead: 100, cacheWrite: 20 },
    }),
    check(run, seen, cell) {
      answered(run, 'cached answer');
      expect(run.result?.usage).toMatchObject({ cache_read_input_tokens: 100, cache_creation_input_tokens: 20 });
      served(seen, cell, 1);
      expect(seen[0]?.turn.cacheMarked).toBe(true);
    },
  },
  {
    name: 'count_tokens (/context)',
    prompt: '/context',
    script: () => () => undefined,
    check(run, _seen, cell, all) {
      answered(run, /## Context Usage[\s\S]*Tokens:\*\* [\d.]+k/);
      expect(all.filter((request) => request.operation === cell.column.countOperation).length).toBeGreaterThan(0);
    },
    fixtures: (all, cell) => all.filter((request) => request.operation === cell.column.countOperation).slice(0, 3),
  },
  {
    name: 'long context → "prompt is too long" → auto-compact',
    before: 'first turn, with a tool',
    prompt: 'COMPACT_ME second turn',
    script: (cell) => {
      let failed = false;
      const first = toolThen(
        [{ id: toolId(cell), name: 'Bash', input: { command: 'echo first', description: 'First' } }],
        () => 'first done',
      );
      return (turn) => {
        if (!turn.userText.includes('COMPACT_ME')) return first(turn);
        if (failed) return { content: [{ type: 'text', text: 'after compaction' }] };
        failed = true;
        return { fail: 'prompt_too_long' };
      };
    },
    check(run, seen, cell) {
      answered(run, 'after compaction');
      const boundary = run.events.find((event) => event.type === 'system' && event.subtype === 'compact_boundary');
      expect(boundary).toMatchObject({ compact_metadata: { trigger: 'auto' } });
      // the first turn's two requests, the refused turn, the summary request, the turn again after compaction
      expect(seen.length).toBeGreaterThanOrEqual(5);
      expect(seen.every((request) => request.operation === cell.column.streamOperation)).toBe(true);
    },
  },
  {
    name: '429 rate limited once → retried, answered',
    prompt: 'answer despite a rate limit',
    script: () => failOnce('rate_limit', 'answered after 429'),
    check(run, seen, cell) {
      answered(run, 'answered after 429');
      served(seen, cell, 2);
    },
  },
  {
    name: '529 overloaded once → retried, answered',
    prompt: 'answer despite overload',
    script: () => failOnce('overloaded', 'answered after 529'),
    check(run, seen, cell) {
      answered(run, 'answered after 529');
      served(seen, cell, 2);
    },
  },
];
