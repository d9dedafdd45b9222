import type { BedrockResults } from './bedrock-scenarios.ts';
import type { PlanPathResults } from './plan-path.ts';
import { compare, emptyPair, versus } from './report.ts';
import { summarize } from './stats.ts';

/** What a step left out by `--only` contributes: the same shapes, every figure NaN (printed n/a, judged not met). */
export const emptyPlanPath = (): PlanPathResults => ({
  nonStreaming: versus([]),
  streamingTtfb: versus([]),
  streamingTotal: versus([]),
  streamingInterEventGap: versus([]),
});

export const emptyBedrock = (): BedrockResults => ({
  bedrockTtfbVsPlan: compare(emptyPair()),
  failoverPenaltyVsBedrockOnly: compare(emptyPair()),
  primaryErrorTime: summarize([]),
  failoverPenalty: { p50: Number.NaN, p99: Number.NaN },
});

export const emptyOnOff = () => ({ latency: compare(emptyPair()), ttfb: compare(emptyPair()) });
