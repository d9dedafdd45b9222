import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { BedrockApi, Database } from '@ccproxy/core';
import {
  claudeCodeVersion,
  runClaudeCode,
  scriptedResponders,
  startAnthropicServer,
  startBedrockServer,
  writeDocSection,
  type AnthropicTestServer,
  type BedrockTestServer,
  type ClaudeRun,
  type ModelBlock,
  type ModelReply,
  type ModelTurn,
} from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../proxy-fixture.ts';
import { bedrockApiKey, bedrockModel } from './matrix.ts';
import { answered } from './rows.ts';

/**
 * The Transitions column: one Claude Code session (`--continue`, same HOME and folder) on a
 * `PlanWithFailover` key that starts on Plan, fails over to Bedrock on a 429, returns to Plan,
 * stays on Bedrock once 529s open the breaker, and comes back to Plan after it closes — tool use,
 * thinking signatures and prompt caching carried across each switch, and no error shown.
 */
export type AnthropicMode = 'healthy' | '429 once' | '529';

export interface Served {
  step: string;
  upstream: 'anthropic' | 'bedrock';
  outcome: 'served' | 'refused';
  turn: ModelTurn;
}

export interface Step {
  name: string;
  /** The step's tag; its tool ids are `toolu_<tag>_<n>` and its signature `sig-<tag>-<upstream>`. */
  tag: string;
  anthropic: AnthropicMode;
  /** Tool calls the model makes before its text answer (Bash echoes). */
  tools: number;
  thinking?: boolean;
  usage?: { cacheRead?: number; cacheWrite?: number };
  /** Wait before the step (retry-after or the breaker's open period to pass). */
  waitMs?: number;
  check(run: ClaudeRun, served: Served[], session: TransitionSession): void;
}

/** Short breaker timings so the open period passes within the test. */
export const breakerEnv = {
  CCPROXY_BREAKER_FAILURES: '3',
  CCPROXY_BREAKER_WINDOW_MS: '20000',
  CCPROXY_BREAKER_OPEN_MS: '4000',
};

const stepOf = (turn: ModelTurn) => [...turn.userText.matchAll(/STEP_(\w+)/g)].at(-1)?.[1] ?? '';
const count = (turn: ModelTurn, text: string) => JSON.stringify(turn.body).split(text).length - 1;

export class TransitionSession {
  readonly served: Served[] = [];
  /** The Bedrock backend the session fails over to (the key's `bedrock.api`). */
  readonly api: BedrockApi;
  db!: Database;
  anthropic!: AnthropicTestServer;
  bedrock!: BedrockTestServer;
  proxy!: RunningProxy;
  #dir = '';
  #key = '';
  #mode: AnthropicMode = 'healthy';
  #refusedOnce = false;
  #steps = new Map<string, Step>();
  #runs = 0;

  constructor(api: BedrockApi) {
    this.api = api;
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'ccproxy-transitions-'));
    this.db = await openTestDatabase();
    this.anthropic = await startAnthropicServer();
    this.bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
    this.proxy = await startProxy(this.db, {
      ANTHROPIC_UPSTREAM_URL: this.anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: this.bedrock.url,
      ...breakerEnv,
    });
    this.#key = (
      await seedKey(this.db, {
        routing: 'PlanWithFailover',
        bedrock: { apiKey: bedrockApiKey, model: bedrockModel, api: this.api },
      })
    ).key;
    const responders = scriptedResponders(() => (turn) => this.#play(turn));
    this.anthropic.respondWith(responders.anthropic);
    this.bedrock.respondWith(responders.bedrock);
  }

  async stop(): Promise<void> {
    await this.proxy?.close();
    await Promise.all([this.anthropic?.close(), this.bedrock?.close()]);
    await this.db?.close();
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }

  /** Runs one step of the session (the first starts it, the others `--continue` it). */
  async run(step: Step): Promise<void> {
    if (step.waitMs !== undefined) await sleep(step.waitMs);
    this.#steps.set(step.tag, step);
    this.#mode = step.anthropic;
    this.#refusedOnce = false;
    this.#runs += 1;
    const run = await runClaudeCode({
      baseUrl: `${this.proxy.url}/ak/${this.#key}`,
      prompt: `[cell:transitions] STEP_${step.tag} ${step.name}`,
      home: join(this.#dir, 'home'),
      cwd: join(this.#dir, 'work'),
      args: ['--allowedTools', 'Bash', ...(this.#runs > 1 ? ['--continue'] : [])],
    });
    step.check(
      run,
      this.served.filter((entry) => entry.step === step.tag),
      this,
    );
  }

  #play(turn: ModelTurn): ModelReply {
    const tag = stepOf(turn);
    const step = this.#steps.get(tag);
    const refuse =
      turn.upstream === 'anthropic' && (this.#mode === '529' || (this.#mode === '429 once' && !this.#refusedOnce));
    this.served.push({ step: tag, upstream: turn.upstream, outcome: refuse ? 'refused' : 'served', turn });
    if (refuse) {
      this.#refusedOnce = true;
      return { fail: this.#mode === '529' ? 'overloaded' : 'rate_limit' };
    }
    const done = turn.toolUses.filter((id) => id.startsWith(`toolu_${tag}_`)).length;
    if (step === undefined || done >= step.tools)
      return { content: [{ type: 'text', text: `${tag} done` }], ...(step?.usage ? { usage: step.usage } : {}) };
    const content: ModelBlock[] = [
      ...(step.thinking === true && done === 0
        ? [{ type: 'thinking' as const, thinking: 'Plan the step.', signature: `sig-${tag}-${turn.upstream}` }]
        : []),
      {
        type: 'tool_use',
        id: `toolu_${tag}_${done + 1}`,
        name: 'Bash',
        input: { command: `echo ${tag}-${done + 1}`, description: 'Echo' },
      },
    ];
    return { content };
  }
}

/** Each tool result in `turn` answers a call of the same id, and `ids` are all there (as call and result). */
export function carriesTools(turn: ModelTurn | undefined, ids: string[]): void {
  expect(turn).toBeDefined();
  for (const id of ids) {
    // Once as the call, once as its result, whatever the upstream's spelling.
    expect(count(turn as ModelTurn, `"${id}"`), id).toBe(2);
  }
}

const first = (served: Served[], outcome: Served['outcome'] = 'served') =>
  served.find((entry) => entry.outcome === outcome);

/** Step A — Plan, healthy: thinking and a tool call on Plan. */
export const onPlan: Step = {
  name: 'start on Plan',
  tag: 'A',
  anthropic: 'healthy',
  tools: 1,
  thinking: true,
  usage: { cacheRead: 40, cacheWrite: 10 },
  check(run, served) {
    answered(run, 'A done');
    expect(served.map((entry) => `${entry.upstream}:${entry.outcome}`)).toEqual([
      'anthropic:served',
      'anthropic:served',
    ]);
    expect(served[1]?.turn.signatures).toEqual(['sig-A-anthropic']);
    expect(run.result?.usage).toMatchObject({ cache_read_input_tokens: 40, cache_creation_input_tokens: 10 });
  },
};

/** Step B — Anthropic answers 429 once: the turn is served by Bedrock with the Plan-made history. */
export const failOverOn429: Step = {
  name: 'fail over on a 429',
  tag: 'B',
  anthropic: '429 once',
  tools: 0,
  usage: { cacheWrite: 30 },
  check(run, served) {
    answered(run, 'B done');
    expect(served.map((entry) => `${entry.upstream}:${entry.outcome}`)).toEqual([
      'anthropic:refused',
      'bedrock:served',
    ]);
    const bedrock = first(served)?.turn;
    carriesTools(bedrock, ['toolu_A_1']);
    expect(bedrock?.cacheMarked).toBe(true);
    expect(run.result?.usage).toMatchObject({ cache_creation_input_tokens: 30 });
  },
};

/** Step C — 429's retry-after has passed and the breaker never opened: the session is back on Plan. */
export const backAfterRetryAfter: Step = {
  name: 'back on Plan after retry-after',
  tag: 'C',
  anthropic: 'healthy',
  tools: 0,
  waitMs: 1_500,
  check(run, served) {
    answered(run, 'C done');
    expect(served.map((entry) => `${entry.upstream}:${entry.outcome}`)).toEqual(['anthropic:served']);
    const plan = first(served)?.turn;
    carriesTools(plan, ['toolu_A_1']);
    expect(plan?.userText).toContain('STEP_B');
    expect(plan?.signatures).toContain('sig-A-anthropic');
    expect(plan?.cacheMarked).toBe(true);
  },
};

/** Step D — Anthropic answers 529: three failures open the breaker, then Bedrock serves without asking Plan. */
export const breakerOpensOn529: Step = {
  name: 'breaker opens on 529s',
  tag: 'D',
  anthropic: '529',
  tools: 3,
  thinking: true,
  check(run, served, session) {
    answered(run, 'D done');
    expect(served.map((entry) => `${entry.upstream}:${entry.outcome}`)).toEqual([
      'anthropic:refused',
      'bedrock:served',
      'anthropic:refused',
      'bedrock:served',
      'anthropic:refused',
      'bedrock:served',
      'bedrock:served',
    ]);
    const last = served.at(-1)?.turn;
    carriesTools(last, ['toolu_A_1', 'toolu_D_1', 'toolu_D_2', 'toolu_D_3']);
    expect(last?.signatures).toContain('sig-D-bedrock');
    expect(session.proxy.logs.some((line) => line.includes('circuit breaker opened'))).toBe(true);
  },
};

/** Step E — the open period is over: the trial request goes to Plan, which closes the breaker. */
export const backAfterBreakerCloses: Step = {
  name: 'back on Plan after the breaker closes',
  tag: 'E',
  anthropic: 'healthy',
  tools: 1,
  waitMs: Number(breakerEnv.CCPROXY_BREAKER_OPEN_MS) + 1_000,
  usage: { cacheRead: 50 },
  check(run, served, session) {
    answered(run, 'E done');
    expect(served.map((entry) => `${entry.upstream}:${entry.outcome}`)).toEqual([
      'anthropic:served',
      'anthropic:served',
    ]);
    const plan = served.at(-1)?.turn;
    carriesTools(plan, ['toolu_A_1', 'toolu_D_1', 'toolu_D_2', 'toolu_D_3', 'toolu_E_1']);
    expect(plan?.signatures).toContain('sig-A-anthropic');
    expect(plan?.cacheMarked).toBe(true);
    expect(run.result?.usage).toMatchObject({ cache_read_input_tokens: 50 });
    expect(session.proxy.logs.some((line) => line.includes('circuit breaker closed'))).toBe(true);
  },
};

export const allSteps = [onPlan, failOverOn429, backAfterRetryAfter, breakerOpensOn529, backAfterBreakerCloses];

const docFile = fileURLToPath(new URL('../../../docs/compatibility.md', import.meta.url));

/** The Bedrock backends a session fails over to: one column each. */
export const transitionApis: BedrockApi[] = ['Converse', 'InvokeModel'];

/** The Transitions section of docs/compatibility.md: each step `pass` per Bedrock backend, or why not yet. */
export async function writeTransitionsDoc(outcomes: Map<BedrockApi, Map<string, string>>): Promise<void> {
  await writeDocSection(
    docFile,
    'claude-code-transitions',
    [
      '## Transitions, with the real Claude Code binary',
      '',
      `Generated by \`proxy/test/claude-code-transitions.test.ts\` with **Claude Code ${claudeCodeVersion}**: one session (\`claude -p\`, then \`--continue\` in the same HOME and folder) on a \`PlanWithFailover\` key, breaker at ${breakerEnv.CCPROXY_BREAKER_FAILURES} failures in ${Number(breakerEnv.CCPROXY_BREAKER_WINDOW_MS) / 1000} s, open ${Number(breakerEnv.CCPROXY_BREAKER_OPEN_MS) / 1000} s, once per Bedrock backend the key fails over to (\`bedrock.api\`). Each step checks the answer the user sees (no error), which upstream served each request, that tool calls and their results keep matching ids across the switch, that each upstream gets its own thinking signatures back, and that cache markers and cache usage survive.`,
      '',
      `| step | ${transitionApis.map((api) => `Transitions (Bedrock ${api})`).join(' | ')} |`,
      `|---|${transitionApis.map(() => '---').join('|')}|`,
      ...allSteps.map(
        (step) =>
          `| ${step.tag}. ${step.name} | ${transitionApis.map((api) => outcomes.get(api)?.get(step.tag) ?? 'not run').join(' | ')} |`,
      ),
    ].join('\n'),
  );
}
