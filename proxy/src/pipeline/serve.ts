import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { ProxyError, type KeyRecord } from '@ccproxy/core';
import { fromPlanResponseHeaders } from '../adapters/anthropic/response.ts';
import type { ProxyMetrics } from '../metrics.ts';
import type { BedrockCredentials } from './bedrock-credentials.ts';
import { forwardToBedrock } from './bedrock-forward.ts';
import { isFailoverStatus, PlanRejected, shouldFailOver } from './failover.ts';
import { forwardToPlan, type ForwardResult } from './plan-forward.ts';

export interface ServeDeps {
  dispatcher: Dispatcher;
  planUpstream: URL;
  planApiKey: string | undefined;
  bedrockEndpoint: string | undefined;
  /** Absent when this process cannot decrypt Bedrock keys: Bedrock-bound requests then fail clearly. */
  credentials: BedrockCredentials | undefined;
  metrics: ProxyMetrics;
}

export interface Served {
  upstream: 'plan' | 'bedrock';
  failover: boolean;
  result: ForwardResult;
}

/** Route by the key's `routing`: Plan, Bedrock, or Plan with failover to Bedrock before the first byte. */
export async function serve(request: FastifyRequest, reply: FastifyReply, upstreamPath: string, record: KeyRecord, deps: ServeDeps): Promise<Served> {
  const bedrock = () => {
    if (deps.credentials === undefined) throw new ProxyError('PRX_BEDROCK_MISCONFIGURED', undefined, { cause: new Error('this process has no key to decrypt Bedrock keys') });
    return forwardToBedrock(request, reply, upstreamPath, record, { dispatcher: deps.dispatcher, credentials: deps.credentials, endpointOverride: deps.bedrockEndpoint });
  };
  if (record.routing === 'BedrockOnly') return { upstream: 'bedrock', failover: false, result: await bedrock() };
  const canFailOver = record.routing === 'PlanWithFailover';
  try {
    const result = await forwardToPlan(request, reply, upstreamPath, { dispatcher: deps.dispatcher, upstream: deps.planUpstream, planApiKey: deps.planApiKey, ...(canFailOver ? { holdBack: isFailoverStatus } : {}) });
    return { upstream: 'plan', failover: false, result };
  } catch (failure) {
    if (!canFailOver || !shouldFailOver(failure, reply.raw.headersSent ? 1 : 0)) throw failure;
    const reason = failure instanceof PlanRejected ? String(failure.status) : (failure as ProxyError).code;
    deps.metrics.failovers.inc({ reason: failure instanceof PlanRejected ? `status_${failure.status}` : 'unreachable' });
    request.log.warn({ reason }, 'Plan upstream unavailable; failing over to Bedrock');
    try {
      return { upstream: 'bedrock', failover: true, result: await bedrock() };
    } catch (bedrockError) {
      if (reply.raw.headersSent || reply.sent || !(failure instanceof PlanRejected)) throw bedrockError;
      // Bedrock could not help: the client gets Anthropic's own answer, retry-after and all.
      request.log.warn({ err: bedrockError }, 'Bedrock failover failed; relaying the Plan answer');
      await reply.code(failure.status).headers(fromPlanResponseHeaders(failure.headers, request.id)).send(failure.body);
      return { upstream: 'plan', failover: false, result: { status: failure.status, outcome: 'complete', ttfbMs: reply.elapsedTime } };
    }
  }
}
