import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { BedrockApi, Database, Routing } from '@ccproxy/core';
import {
  anthropicTurn,
  cellOf,
  converseTurn,
  runClaudeCode,
  scriptedResponders,
  type AnthropicTestServer,
  type BedrockTestServer,
  type ClaudeRun,
  type ModelScript,
  type ModelTurn,
} from '@ccproxy/test-harness';
import { seedKey, type RunningProxy } from '../proxy-fixture.ts';

/**
 * A column of the real-binary matrix is one entry: the access key's settings, the upstream that
 * must serve, and the operations it must have seen. A row is one `claude -p` (a cell), scripted
 * once for every upstream (test/src/scripted-model.ts).
 */
export interface Column {
  name: string;
  routing: Routing;
  api?: BedrockApi;
  upstream: 'anthropic' | 'bedrock';
  /** The operation a streamed turn must arrive as (Claude Code always streams). */
  streamOperation: string;
  countOperation: string;
}

/** One request an upstream saw, in the neutral view the scripts use. */
export interface Seen {
  upstream: 'anthropic' | 'bedrock';
  /** `messages` / `count_tokens` (Anthropic), the Bedrock operation from the path otherwise. */
  operation: string;
  cell: string | undefined;
  turn: ModelTurn;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface CellContext {
  id: string;
  cwd: string;
  home: string;
  column: Column;
}

export interface Row {
  name: string;
  prompt: string;
  args?: string[];
  env?: Record<string, string>;
  setup?(cell: CellContext): Promise<void>;
  /** A first turn of the same session before the measured one (which then runs with `--continue`). */
  before?: string;
  script(cell: CellContext): ModelScript;
  /** `seen`: this cell's requests in order; `all`: everything the column's upstream saw meanwhile. */
  check(run: ClaudeRun, seen: Seen[], cell: CellContext, all: Seen[]): void;
  /** The requests kept as fixtures when they carry no cell marker (count_tokens); the cell's own otherwise. */
  fixtures?(all: Seen[], cell: CellContext): Seen[];
}

export const bedrockModel = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
export const bedrockApiKey = 'matrix-bedrock-key';

/** Everything the upstreams saw so far, in the neutral view. */
export function seenBy(anthropic: AnthropicTestServer, bedrock: BedrockTestServer): Seen[] {
  const fromAnthropic = anthropic.requests
    .filter((request) => request.method === 'POST')
    .map((request): Seen => {
      const turn = anthropicTurn(JSON.parse(request.body.toString('utf8')) as Record<string, unknown>);
      return {
        upstream: 'anthropic',
        operation: request.path.startsWith('/v1/messages/count_tokens') ? 'count_tokens' : 'messages',
        cell: cellOf(turn),
        turn,
        path: request.path,
        headers: request.headers,
      };
    });
  const fromBedrock = bedrock.requests.map((request): Seen => {
    const operation = request.path.split('/').at(-1) ?? '';
    const converse = (request.body.input as { converse?: Record<string, unknown> } | undefined)?.converse;
    const turn = request.operation.startsWith('InvokeModel')
      ? anthropicTurn(request.body, 'bedrock')
      : converseTurn(operation === 'count-tokens' ? (converse ?? {}) : request.body);
    return { upstream: 'bedrock', operation, cell: cellOf(turn), turn, path: request.path, headers: request.headers };
  });
  return [...fromAnthropic, ...fromBedrock];
}

export class Matrix {
  readonly #scripts = new Map<string, ModelScript>();
  readonly #keys = new Map<string, string>();
  readonly #anthropic: AnthropicTestServer;
  readonly #bedrock: BedrockTestServer;
  readonly #proxy: RunningProxy;
  readonly #dir: string;

  constructor(servers: {
    anthropic: AnthropicTestServer;
    bedrock: BedrockTestServer;
    proxy: RunningProxy;
    dir: string;
  }) {
    this.#anthropic = servers.anthropic;
    this.#bedrock = servers.bedrock;
    this.#proxy = servers.proxy;
    this.#dir = servers.dir;
    const responders = scriptedResponders((cell) => this.#scripts.get(cell));
    this.#anthropic.respondWith(responders.anthropic);
    this.#bedrock.respondWith(responders.bedrock);
  }

  /** One access key per column (the breaker and sessions of one column never touch another's). */
  async seed(db: Database, columns: Column[]): Promise<void> {
    for (const column of columns) {
      const { key } = await seedKey(db, {
        routing: column.routing,
        bedrock: {
          apiKey: bedrockApiKey,
          model: bedrockModel,
          ...(column.api === undefined ? {} : { api: column.api }),
        },
      });
      this.#keys.set(column.name, key);
    }
  }

  baseUrl(column: Column): string {
    return `${this.#proxy.url}/ak/${this.#keys.get(column.name) ?? ''}`;
  }

  /** Runs one cell: its files, its script, `claude -p` (after its first turn, if any), its checks. */
  async run(
    row: Row,
    column: Column,
    id: string,
  ): Promise<{ run: ClaudeRun; seen: Seen[]; cell: CellContext; fixtures: Seen[] }> {
    const cell: CellContext = { id, cwd: join(this.#dir, id, 'work'), home: join(this.#dir, id, 'home'), column };
    await mkdir(cell.cwd, { recursive: true });
    await row.setup?.(cell);
    this.#scripts.set(id, row.script(cell));
    const common = {
      baseUrl: this.baseUrl(column),
      home: cell.home,
      cwd: cell.cwd,
      ...(row.env ? { env: row.env } : {}),
    };
    const args = ['--allowedTools', 'Bash', 'Read', ...(row.args ?? [])];
    if (row.before !== undefined) {
      const first = await runClaudeCode({ ...common, prompt: `[cell:${id}] ${row.before}`, args });
      if (first.result?.is_error !== false) throw new Error(`first turn failed: ${JSON.stringify(first.result)}`);
    }
    const run = await runClaudeCode({
      ...common,
      prompt: row.prompt.startsWith('/') ? row.prompt : `[cell:${id}] ${row.prompt}`,
      args: row.before === undefined ? args : [...args, '--continue'],
    });
    const all = seenBy(this.#anthropic, this.#bedrock).filter((seen) => seen.upstream === column.upstream);
    const seen = all.filter((request) => request.cell === id);
    row.check(run, seen, cell, all);
    expect(run.outbound, 'Claude Code tried to reach beyond loopback').toEqual([]);
    return { run, seen, cell, fixtures: row.fixtures?.(all, cell) ?? seen };
  }
}
