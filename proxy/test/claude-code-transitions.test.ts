import { afterAll, beforeAll, describe, it } from 'vitest';
import { pendingTransitions } from './claude-code/pending.ts';
import { allSteps, TransitionSession, writeTransitionsDoc } from './claude-code/transitions.ts';

/**
 * The Transitions column of the real-binary matrix: one Claude Code session across Plan →
 * Bedrock (429) → Plan → Bedrock (529, breaker open) → Plan (breaker closed). Steps depend on
 * the ones before, so they run in order, up to the first step still pending a merge.
 */
const firstPending = allSteps.findIndex((step) => pendingTransitions.has(step.tag));
const steps = firstPending < 0 ? allSteps : allSteps.slice(0, firstPending);
const outcomes = new Map<string, string>(
  allSteps.map((step) => [step.tag, `not yet: ${pendingTransitions.get(step.tag) ?? 'needs the step before it'}`]),
);

const ran = new Set<string>();

describe('Claude Code session across provider transitions', () => {
  const session = new TransitionSession();
  beforeAll(() => session.start());
  afterAll(async () => {
    await session.stop();
    // A filtered run (vitest -t) must not overwrite the table with gaps.
    if (ran.size === steps.length) await writeTransitionsDoc(outcomes);
  });

  for (const step of steps)
    it(`${step.tag}. ${step.name}`, async () => {
      ran.add(step.tag);
      outcomes.set(step.tag, 'FAIL');
      await session.run(step);
      outcomes.set(step.tag, 'pass');
    }, 120_000);
});
