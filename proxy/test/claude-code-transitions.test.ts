import { afterAll, beforeAll, describe, it } from 'vitest';
import type { BedrockApi } from '@ccproxy/core';
import { pendingTransitions } from './claude-code/pending.ts';
import { allSteps, TransitionSession, transitionApis, writeTransitionsDoc } from './claude-code/transitions.ts';

/**
 * The Transitions column of the real-binary matrix: one Claude Code session across Plan →
 * Bedrock (429) → Plan → Bedrock (529, breaker open) → Plan (breaker closed), once per Bedrock
 * backend (Converse, and InvokeModel: the default for new keys). Steps depend on the ones
 * before, so they run in order, up to the first step still pending a merge.
 */
const firstPending = allSteps.findIndex((step) => pendingTransitions.has(step.tag));
const steps = firstPending < 0 ? allSteps : allSteps.slice(0, firstPending);
const outcomes = new Map<BedrockApi, Map<string, string>>(
  transitionApis.map((api) => [
    api,
    new Map(
      allSteps.map((step) => [step.tag, `not yet: ${pendingTransitions.get(step.tag) ?? 'needs the step before it'}`]),
    ),
  ]),
);
const ran = new Set<string>();

afterAll(async () => {
  // A filtered run (vitest -t) must not overwrite the table with gaps.
  if (ran.size === steps.length * transitionApis.length) await writeTransitionsDoc(outcomes);
});

for (const api of transitionApis)
  describe(`Claude Code session across provider transitions (Bedrock ${api})`, () => {
    const session = new TransitionSession(api);
    const results = outcomes.get(api) as Map<string, string>;
    beforeAll(() => session.start());
    afterAll(() => session.stop());

    for (const step of steps)
      it(`${step.tag}. ${step.name}`, async () => {
        ran.add(`${api}:${step.tag}`);
        results.set(step.tag, 'FAIL');
        await session.run(step);
        results.set(step.tag, 'pass');
      }, 120_000);
  });
