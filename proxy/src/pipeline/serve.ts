import type { Dispatcher } from 'undici';
import { anthropicTypeForStatus, ProxyError, type AnthropicErrorBody, type KeyRecord } from '@ccproxy/core';
import { fromPlanResponseHeaders } from '../adapters/anthropic/response.ts';
import type { ProxyMetrics } from '../metrics.ts';
import type { BedrockCredentials } from './bedrock-credentials.ts';
import { forwardToBedrock } from './bedrock-forward.ts';
import { clientClosed } from './forward.ts';
import type { Exchange } from './exchange.ts';
import { isFailoverStatus, PlanRejected, retryAfterMs, shouldFailOver } from './failover.ts';
import { forwardToPlan } from './backends/plan.ts';
import type { ForwardResult } from './translator.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';
import { decideRoute, type BreakerState } from './route.ts';

export interface ServeDeps {
  dispatcher: Dispatcher;
  planUpstream: URL;
  planApiKey: string | undefined;
  bedrockEndpoint: string | undefined;
  /** Absent when this process cannot decrypt Bedrock keys: Bedrock-bound requests then fail clearly. */
  credentials: BedrockCredentials | undefined;
  /** Absent → no breaker: every PlanWithFailover request tries Plan first. */
  breakers: CircuitBreakers | undefined;
  metrics: ProxyMetrics;
}

export interface Served {
  upstream: 'plan' | 'bedrock';
  failover: boolean;
  result: ForwardResult;
}

/**
 * Route by the key's `routing` and its circuit breaker: Plan, Bedrock, or Plan with failover to
 * Bedrock before the first byte. Plan failures of PlanWithFailover keys feed the breaker (never
 * 4xx, never count_tokens).
 */
export async function serve(
  exchange: Exchange,
  upstreamPath: string,
  record: KeyRecord,
  deps: ServeDeps,
  /** Runs before a request goes to Bedrock: the Bedrock-only rate limits (throws PRX_RATE_LIMITED). */
  beforeBedrock?: () => void | Promise<void>,
): Promise<Served> {
  const bedrock = async () => {
    // The Bedrock-only limits first: a request they refuse never went to Bedrock.
    if (beforeBedrock !== undefined) await beforeBedrock();
    exchange.upstream = 'bedrock';
    if (deps.credentials === undefined)
      throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, {
        cause: new Error('this process has no key to decrypt Bedrock keys'),
      });
    return forwardToBedrock(exchange, upstreamPath, record, {
      dispatcher: deps.dispatcher,
      credentials: deps.credentials,
      endpointOverride: deps.bedrockEndpoint,
    });
  };
  const canFailOver = record.routing === 'PlanWithFailover';
  const breakers = canFailOver ? deps.breakers : undefined;
  const label = `${record.namespace}/${record.name}`;
  const session = sessionOf(exchange);
  const breakerState: BreakerState =
    breakers === undefined ? 'closed' : await breakers.state(record.accessKeyId, label);
  let decision = decideRoute(record.routing, breakerState, breakers?.isPinned(record.accessKeyId, session) ?? false);
  if (decision === 'trial') decision = (await breakers?.claimTrial(record.accessKeyId)) === true ? 'plan' : 'bedrock';
  if (decision === 'bedrock') {
    exchange.failover = canFailOver;
    return { upstream: 'bedrock', failover: canFailOver, result: await bedrock() };
  }

  const countsForBreaker = breakers !== undefined && !upstreamPath.startsWith('/v1/messages/count_tokens');
  exchange.upstream = 'plan';
  try {
    const result = await forwardToPlan(exchange, upstreamPath, {
      dispatcher: deps.dispatcher,
      upstream: deps.planUpstream,
      planApiKey: deps.planApiKey,
      ...(canFailOver ? { holdBack: isFailoverStatus } : {}),
    });
    if (countsForBreaker && result.outcome === 'complete') await breakers.success(record.accessKeyId, label);
    return { upstream: 'plan', failover: false, result };
  } catch (failure) {
    if (!canFailOver || !shouldFailOver(failure, exchange.res.headersSent ? 1 : 0)) throw failure;
    const reason = failure instanceof PlanRejected ? `status_${failure.status}` : 'unreachable';
    // Counted alongside the Bedrock call, not before it; the breaker makes the key's next request wait for the count.
    if (countsForBreaker) breakers.failure(record.accessKeyId, label, reason);
    // Anthropic did fail, but the client has left meanwhile: a Bedrock call would be billed for nobody.
    if (exchange.gone.aborted) throw clientClosed(failure);
    deps.metrics.failovers.inc({ reason });
    exchange.log.warn({ reason, breaker: breakerState }, 'Plan upstream unavailable; failing over to Bedrock');
    breakers?.failedOver(
      record.accessKeyId,
      session,
      failure instanceof PlanRejected ? retryAfterMs(failure.headers, Date.now()) : undefined,
    );
    exchange.failover = true;
    try {
      return { upstream: 'bedrock', failover: true, result: await bedrock() };
    } catch (bedrockError) {
      if (exchange.res.headersSent || !(failure instanceof PlanRejected)) throw bedrockError;
      // The Bedrock-only limit refused the failover: the client hears that limit (which, retry-after).
      if (bedrockError instanceof ProxyError && bedrockError.code === 'PRX_RATE_LIMITED') throw bedrockError;
      // Bedrock could not help: the client gets Anthropic's own answer, retry-after and all.
      exchange.log.warn({ err: bedrockError }, 'Bedrock failover failed; relaying the Plan answer');
      relayRejected(exchange, failure);
      return {
        upstream: 'plan',
        failover: false,
        result: { status: failure.status, outcome: 'complete', ttfbMs: exchange.elapsedMs },
      };
    }
  }
}

function sessionOf(exchange: Exchange): string | undefined {
  const value = exchange.req.headers['x-claude-code-session-id'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Anthropic's held-back answer, relayed after all. One that was not kept whole (larger than the
 * hold, or its body broke or stalled) is not relayed cut short: the client gets an error of the
 * same status and type in Anthropic's shape, with Anthropic's headers (retry-after and all).
 */
function relayRejected(exchange: Exchange, failure: PlanRejected): void {
  const headers = fromPlanResponseHeaders(failure.headers, exchange.id);
  if (failure.complete) return exchange.send(failure.status, headers, failure.body);
  delete headers['content-encoding'];
  const body: AnthropicErrorBody = {
    type: 'error',
    error: {
      type: anthropicTypeForStatus(failure.status),
      message: `The Anthropic API answered ${failure.status}; its answer could not be kept whole to relay.`,
    },
    request_id: exchange.id,
  };
  exchange.send(failure.status, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body));
}
