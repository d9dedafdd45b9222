/**
 * CloudWatch metrics as Embedded Metric Format lines on stdout, one batch per interval.
 *
 * Why EMF rather than PutMetricData: on EKS Fargate the logs already go to CloudWatch Logs
 * (Fluent Bit), which turns EMF lines into metrics by itself — no CloudWatch API calls, no extra
 * IAM permission, no SDK on the hot path or retries to manage, and the numbers land even if the
 * metrics API throttles. Off by default locally (CCPROXY_CLOUDWATCH_EMF).
 */
export const cloudWatchNamespace = 'ClaudeCodeProxy';

export interface MeteredRequest {
  provider: 'plan' | 'bedrock' | 'none';
  latencyMs: number;
  /** ms to the response head: what a user waits for (a stream's whole duration is not). */
  ttfbMs?: number;
  /** The answer failed the user: a 5xx, or a stream that ended in `event: error`. */
  failed: boolean;
  /** Anthropic error type when the answer was an error. */
  errorType?: string;
  failover: boolean;
  bedrockTokens?: { input: number; output: number; cacheRead: number; cacheCreation: number };
  /** The metered request's priced cost in USD (SpendMeter); null: its model is not in the price table. */
  spendUsd?: number | null;
}

/** EMF allows at most 100 values per metric in one line; beyond that a reservoir sample is kept. */
const maxLatencyValues = 100;

/** Up to 100 values of one metric: the first 100, then a uniform reservoir sample of all seen. */
class Sample {
  readonly values: number[] = [];
  #seen = 0;

  add(value: number, random: () => number): void {
    this.#seen += 1;
    const rounded = Math.round(value * 1000) / 1000;
    if (this.values.length < maxLatencyValues) this.values.push(rounded);
    else {
      const slot = Math.floor(random() * this.#seen);
      if (slot < maxLatencyValues) this.values[slot] = rounded;
    }
  }
}

interface ProviderTotals {
  requests: number;
  spendUsd: number;
  unpriced: number;
  latencies: Sample;
  ttfbs: Sample;
}

export class CloudWatchEmf {
  readonly #write: (line: string) => void;
  readonly #random: () => number;
  #providers = new Map<string, ProviderTotals>();
  #errors = new Map<string, number>();
  #fallbacks = 0;
  #failed = 0;
  #tokens = { input: 0, output: 0, cacheRead: 0, cacheCreation: 0 };
  #circuitOpen = 0;

  constructor(write: (line: string) => void, random: () => number = Math.random) {
    this.#write = write;
    this.#random = random;
  }

  observe(request: MeteredRequest): void {
    const totals = this.#providers.get(request.provider) ?? {
      requests: 0,
      spendUsd: 0,
      unpriced: 0,
      latencies: new Sample(),
      ttfbs: new Sample(),
    };
    this.#providers.set(request.provider, totals);
    totals.requests += 1;
    if (request.spendUsd === null) totals.unpriced += 1;
    else if (request.spendUsd !== undefined) totals.spendUsd += request.spendUsd;
    totals.latencies.add(request.latencyMs, this.#random);
    if (request.ttfbMs !== undefined) totals.ttfbs.add(request.ttfbMs, this.#random);
    if (request.failed) this.#failed += 1;
    if (request.errorType !== undefined)
      this.#errors.set(
        `${request.errorType}|${request.provider}`,
        (this.#errors.get(`${request.errorType}|${request.provider}`) ?? 0) + 1,
      );
    if (request.failover) this.#fallbacks += 1;
    if (request.bedrockTokens !== undefined) {
      this.#tokens.input += request.bedrockTokens.input;
      this.#tokens.output += request.bedrockTokens.output;
      this.#tokens.cacheRead += request.bedrockTokens.cacheRead;
      this.#tokens.cacheCreation += request.bedrockTokens.cacheCreation;
    }
  }

  /** Number of keys whose breaker is open, as last seen. */
  setCircuitOpen(count: number): void {
    this.#circuitOpen = count;
  }

  /** Emits the interval's lines and starts a new interval. */
  flush(timestamp: number = Date.now()): void {
    const line = (
      dimensions: string[][],
      metrics: Array<{ Name: string; Unit: string }>,
      values: Record<string, unknown>,
    ) =>
      this.#write(
        JSON.stringify({
          _aws: {
            Timestamp: timestamp,
            CloudWatchMetrics: [{ Namespace: cloudWatchNamespace, Dimensions: dimensions, Metrics: metrics }],
          },
          ...values,
        }),
      );
    for (const [provider, totals] of this.#providers) {
      line(
        [['Provider']],
        [
          { Name: 'RequestCount', Unit: 'Count' },
          { Name: 'RequestLatency', Unit: 'Milliseconds' },
          { Name: 'TimeToFirstByte', Unit: 'Milliseconds' },
          { Name: 'SpendUSD', Unit: 'None' },
          { Name: 'UnpricedRequests', Unit: 'Count' },
        ],
        {
          Provider: provider,
          RequestCount: totals.requests,
          SpendUSD: Math.round(totals.spendUsd * 1e6) / 1e6,
          UnpricedRequests: totals.unpriced,
          RequestLatency: totals.latencies.values,
          TimeToFirstByte: totals.ttfbs.values,
        },
      );
    }
    for (const [key, count] of this.#errors) {
      const [errorType, provider] = key.split('|');
      line([['ErrorType', 'Provider']], [{ Name: 'ErrorCount', Unit: 'Count' }], {
        ErrorType: errorType,
        Provider: provider,
        ErrorCount: count,
      });
    }
    // Totals over every provider ("none": refused before any upstream) for the alarms.
    const requests = [...this.#providers.values()].reduce((sum, totals) => sum + totals.requests, 0);
    line(
      [[]],
      [
        { Name: 'FallbackCount', Unit: 'Count' },
        { Name: 'CircuitOpen', Unit: 'Count' },
        { Name: 'Requests', Unit: 'Count' },
        { Name: 'FailedRequests', Unit: 'Count' },
      ],
      {
        FallbackCount: this.#fallbacks,
        CircuitOpen: this.#circuitOpen,
        Requests: requests,
        FailedRequests: this.#failed,
      },
    );
    for (const [type, value] of Object.entries(this.#tokens)) {
      if (value > 0)
        line([['TokenType']], [{ Name: 'BedrockTokensUsed', Unit: 'Count' }], {
          TokenType: type,
          BedrockTokensUsed: value,
        });
    }
    this.#providers = new Map();
    this.#errors = new Map();
    this.#fallbacks = 0;
    this.#failed = 0;
    this.#tokens = { input: 0, output: 0, cacheRead: 0, cacheCreation: 0 };
  }
}
