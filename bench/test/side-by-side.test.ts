import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Results } from '../src/results.ts';
import { issue27Lines, sideBySide } from '../src/side-by-side.ts';

/** The fields issue 27's lines read, around the figures each test sets. */
function results(over: {
  cpu?: { floor: number; ccproxy: number; floorEvent?: number; ccproxyEvent?: number };
  rates?: { floor: number; ccproxy: number };
  streams?: { held: number; rss: number };
  planP99?: number;
  converseP99?: number;
  invokeP99?: number;
  /** Median of per-round added p99 over Plan (runs since the Bedrock lines were judged on it). */
  roundMedianP99?: { converse: number; invoke: number };
  /** CPU µs per frame (runs since it was measured); wall is 2.9 / 3.1. */
  translationCpu?: { converse: number; invoke: number };
  streamLadder?: number[];
  peerStatus?: Record<string, string>;
}): Results {
  const ladder = (maxSustained: number) => ({ rungs: [], maxSustained, rigLimited: false });
  const cpuSide = (perRequest: number, perEvent: number) => ({
    microsPerRequest: perRequest,
    requestRounds: [perRequest],
    microsPerEvent: perEvent,
    eventRounds: [perEvent],
  });
  const empty = { addedRoundMedian: {}, addedVsFloor: { p50: Number.NaN, p99: Number.NaN } };
  const summary = (p99: number) => ({ n: 1, p50: p99, p90: p99, p99, max: p99 });
  return {
    nonStreaming: empty,
    streamingTtfb: {
      addedRoundMedian: { floor: { p50: 0.4, p99: 1.5 }, ccproxy: { p50: 0.44, p99: 1.6 } },
      addedVsFloor: { p50: 1.1, p99: 1.07 },
    },
    openLoop: empty,
    tailAnatomy: {
      streamingTtfb: {
        floor: { segments: { proxyIn: { p50: 100, p99: 200 } } },
        ccproxy: { segments: { proxyIn: { p50: 130, p99: 280 } } },
      },
      nonStreaming: {
        floor: { segments: { proxyIn: { p50: 40, p99: 90 } } },
        ccproxy: { segments: { proxyIn: { p50: 45, p99: 100 } } },
      },
    },
    cpuCost: over.cpu && {
      concurrency: 8,
      sides: {
        floor: cpuSide(over.cpu.floor, over.cpu.floorEvent ?? 10),
        ccproxy: cpuSide(over.cpu.ccproxy, over.cpu.ccproxyEvent ?? 10),
        peer: { ...cpuSide(Number.NaN, Number.NaN), failed: 'cannot run: 3 of 600 failed' },
      },
    },
    throughput: { ladders: over.rates ? { floor: ladder(over.rates.floor), ccproxy: ladder(over.rates.ccproxy) } : {} },
    streams: {
      sides: over.streams ? { ccproxy: { maxHeld: over.streams.held } } : {},
      memory: over.streams ? { sides: { ccproxy: { rssKiBPerStream: over.streams.rss } } } : undefined,
    },
    bedrockTtfbVsPlan: { direct: summary(over.planP99 ?? 2), ccproxy: summary(over.converseP99 ?? 2.3) },
    invokeTtfbVsConverse: { direct: summary(over.converseP99 ?? 2.3), ccproxy: summary(over.invokeP99 ?? 2.4) },
    translationMicrosPerFrame: 2.9,
    invokeTranslationMicrosPerFrame: 3.1,
    ...(over.translationCpu && {
      translationCpuMicrosPerFrame: over.translationCpu.converse,
      invokeTranslationCpuMicrosPerFrame: over.translationCpu.invoke,
    }),
    ...(over.roundMedianP99 && {
      bedrockAddedRoundMedian: {
        converse: { p50: 0, p99: over.roundMedianP99.converse },
        invoke: { p50: 0, p99: over.roundMedianP99.invoke },
      },
    }),
    plan: { streamLadder: over.streamLadder ?? [128, 4096] },
    peerStatus: over.peerStatus ?? {},
  } as unknown as Results;
}

const lineOf = (r: Results, start: string) => {
  const line = issue27Lines(r).find((l) => l.metric.startsWith(start));
  if (line === undefined) throw new Error(`no line ${start}`);
  return line;
};

describe("issue 27's target lines", () => {
  it('judges CPU per request against 1.8× the floor and per stream event against 1.5×', () => {
    expect(lineOf(results({ cpu: { floor: 100, ccproxy: 179 } }), 'CPU per non-streaming').met).toBe(true);
    expect(lineOf(results({ cpu: { floor: 100, ccproxy: 181 } }), 'CPU per non-streaming').met).toBe(false);
    const events = results({ cpu: { floor: 1, ccproxy: 1, floorEvent: 10, ccproxyEvent: 16 } });
    expect(lineOf(events, 'CPU per relayed stream event').met).toBe(false);
    // A run without the CPU scenario is not met, never a pass by default.
    expect(lineOf(results({}), 'CPU per non-streaming').met).toBe(false);
  });

  it('asks 2,000 req/s where the floor reaches it, and the floor’s own rate where it does not', () => {
    expect(lineOf(results({ rates: { floor: 4000, ccproxy: 1500 } }), 'max sustained').met).toBe(false);
    expect(lineOf(results({ rates: { floor: 4000, ccproxy: 2000 } }), 'max sustained').met).toBe(true);
    expect(lineOf(results({ rates: { floor: 1500, ccproxy: 1500 } }), 'max sustained').met).toBe(true);
    expect(lineOf(results({ rates: { floor: 1500, ccproxy: 1000 } }), 'max sustained').met).toBe(false);
  });

  it('needs 4,096 streams held and at most 16 KiB of RSS each', () => {
    expect(lineOf(results({ streams: { held: 4096, rss: 15.9 } }), 'concurrent streams').met).toBe(true);
    expect(lineOf(results({ streams: { held: 3072, rss: 10 } }), 'concurrent streams').met).toBe(false);
    expect(lineOf(results({ streams: { held: 4096, rss: 16.5 } }), 'concurrent streams').met).toBe(false);
  });

  it('measures both Bedrock APIs over the Plan path and judges the ratios of proxyIn and TTFB', () => {
    const r = results({ planP99: 2, converseP99: 2.4, invokeP99: 2.6 });
    expect(lineOf(r, 'Bedrock Converse').met).toBe(true);
    expect(lineOf(r, 'Bedrock InvokeModel').measured).toBe('0.600 ms (pooled)');
    expect(lineOf(r, 'Bedrock InvokeModel').met).toBe(false);
    expect(lineOf(r, 'InvokeModel chunk').met).toBe(false);
    expect(lineOf(r, 'proxyIn (streaming)').met).toBe(false); // 1.3× at p50
    expect(lineOf(r, 'proxyIn (non-streaming)').met).toBe(true);
    expect(lineOf(r, 'streaming TTFB added').met).toBe(true);
  });
});

describe('the Bedrock lines', () => {
  it('judge TTFB on the median of per-round added p99s where the run has them, the pooled figure beside', () => {
    const r = results({ planP99: 2, converseP99: 2.4, invokeP99: 2.9, roundMedianP99: { converse: 0.6, invoke: 0.3 } });
    expect(lineOf(r, 'Bedrock Converse')).toMatchObject({ measured: '0.600 ms (pooled 0.400 ms)', met: false });
    expect(lineOf(r, 'Bedrock InvokeModel')).toMatchObject({ measured: '0.300 ms (pooled 0.900 ms)', met: true });
  });

  it('judge translation on CPU time per frame where the run measured it, on wall time in older runs', () => {
    expect(lineOf(results({}), 'Converse frame')).toMatchObject({ measured: '2.90 µs wall', met: true });
    expect(lineOf(results({}), 'InvokeModel chunk')).toMatchObject({ measured: '3.10 µs wall', met: false });
    const cpu = results({ translationCpu: { converse: 3.2, invoke: 1.4 } });
    expect(lineOf(cpu, 'Converse frame')).toMatchObject({ measured: '3.20 µs CPU (wall 2.90 µs)', met: false });
    expect(lineOf(cpu, 'InvokeModel chunk')).toMatchObject({ measured: '1.40 µs CPU (wall 3.10 µs)', met: true });
  });

  it('say when the stream ladder stopped short of 4,096 (the quick run)', () => {
    const quick = results({ streams: { held: 1024, rss: 12 }, streamLadder: [128, 256, 512, 1024] });
    expect(lineOf(quick, 'concurrent streams')).toMatchObject({
      measured: "1024; 12.0 KiB (this run's ladder tops at 1024)",
      met: false,
    });
    expect(lineOf(results({ streams: { held: 4096, rss: 12 } }), 'concurrent streams').measured).toBe('4096; 12.0 KiB');
  });
});

describe('a saved run (JSON writes NaN as null)', () => {
  it('judges a figure the run did not take as not met, never as 0', () => {
    const saved = JSON.parse(
      JSON.stringify(results({ planP99: Number.NaN, converseP99: Number.NaN, invokeP99: Number.NaN })),
    ) as Results;
    expect(lineOf(saved, 'Bedrock Converse')).toMatchObject({ measured: 'n/a (pooled)', met: false });
    expect(lineOf(saved, 'Bedrock InvokeModel')).toMatchObject({ measured: 'n/a (pooled)', met: false });
    const rounds = JSON.parse(
      JSON.stringify(results({ roundMedianP99: { converse: Number.NaN, invoke: Number.NaN } })),
    ) as Results;
    expect(lineOf(rounds, 'Bedrock Converse')).toMatchObject({ met: false });
    expect(lineOf(rounds, 'Bedrock Converse').measured).toMatch(/^n\/a /);
  });
});

describe('the side-by-side table', () => {
  it('has floor, ccproxy and every peer as columns, and says why a peer could not run', () => {
    const table = sideBySide(
      results({
        cpu: { floor: 100, ccproxy: 150 },
        peerStatus: { peer: 'runs: portkey', litellm: 'runs: litellm 1.110.2', bifrost: 'cannot run: refused (403)' },
      }),
    );
    expect(table.split('\n')[0]).toBe('| metric | floor | ccproxy | Portkey | LiteLLM | Bifrost |');
    expect(table).toContain('| CPU per non-streaming request (c=8) | 100 µs | 150 µs | n/a | n/a | n/a |');
    expect(table).toContain('- Bifrost: cannot run: refused (403)');
    expect(table).toContain('- Portkey, CPU scenario: cannot run: 3 of 600 failed');
    expect(table).not.toContain('LiteLLM: cannot run');
  });
});

describe("LiteLLM's requirements file", () => {
  const text = readFileSync(new URL('../peers/litellm-requirements.txt', import.meta.url), 'utf8');
  const requirements = text
    .replaceAll('\\\n', ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));

  it('pins every package by exact version and sha256 wheel hash', () => {
    expect(requirements.length).toBeGreaterThan(50);
    for (const line of requirements) expect(line).toMatch(/^[A-Za-z0-9._-]+==[^\s]+\s+--hash=sha256:[0-9a-f]{64}$/);
  });

  it('is LiteLLM 1.110.2, never the compromised 1.82.7 or 1.82.8', () => {
    const litellm = requirements.filter((line) => /^litellm==/i.test(line));
    expect(litellm).toHaveLength(1);
    expect(litellm[0]).toMatch(/^litellm==1\.110\.2 /);
    expect(text).not.toMatch(/litellm==1\.82\.[78]\b/);
  });
});
