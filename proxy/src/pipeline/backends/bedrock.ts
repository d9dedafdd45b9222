import type { Dispatcher } from 'undici';
import { ProxyError, type KeyRecord, type Usage } from '@ccproxy/core';
import { fromBedrockFailure } from '../../adapters/bedrock/errors.ts';
import type { BedrockCredentials } from '../bedrock-credentials.ts';
import type { ClientSignal } from '../client-gone.ts';
import type { Exchange } from '../exchange.ts';
import { relay } from '../sse-relay.ts';
import type { Backend, ForwardResult, StreamTranslator, UpstreamRequest } from '../translator.ts';
import { fromUpstreamFailure } from '../upstream-error.ts';

/** One Bedrock operation's translation, from the backend adapter (Converse, InvokeModel). */
export interface BedrockTranslation {
  /** The operation's path (model id in it) and JSON body. */
  path: string;
  body: string;
  stream: boolean;
  /** Extra request headers (the streaming Accept of the operation). */
  headers: Record<string, string>;
  /** A whole (non-streaming) answer's text → the client's JSON and its usage; throws on a body that is not one. */
  whole(text: string): { body: string; usage: Usage };
  /** A streaming answer's translator (its `usage` is read when the stream has ended). */
  streamTranslator(): StreamTranslator & { readonly usage: Usage };
  /** The model the client asked for, and the Bedrock one that served. */
  modelRequested: string;
  modelServed: string;
}

/** The request being authenticated, as it will be sent (a SigV4 signature covers its path, headers and body). */
export interface BedrockAuthRequest {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}
export type BedrockAuth = (request: BedrockAuthRequest) => Promise<Record<string, string>>;

/**
 * The Bedrock Runtime request's authentication headers: the one place they are obtained (for
 * every operation, CountTokens included), so a change of scheme (SigV4) happens here only.
 */
export async function bedrockAuthHeaders(
  credentials: BedrockCredentials,
  record: KeyRecord,
  request: BedrockAuthRequest,
): Promise<Record<string, string>> {
  const { host } = new URL(request.origin);
  return credentials.authHeaders(record.accessKeyId, record.bedrock.region, {
    method: 'POST',
    host,
    path: request.path,
    headers: request.headers,
    body: request.body,
  });
}

/** The Bedrock backend for one translated operation (the seam's `Backend`). */
export class BedrockBackend implements Backend {
  readonly #exchange: Exchange;
  readonly #translation: BedrockTranslation;
  readonly #endpoint: URL;
  readonly #auth: () => Promise<Record<string, string>>;

  constructor(exchange: Exchange, translation: BedrockTranslation, endpoint: URL, auth: BedrockAuth) {
    this.#exchange = exchange;
    this.#translation = translation;
    this.#endpoint = endpoint;
    this.#auth = () =>
      auth({ origin: endpoint.origin, path: translation.path, headers: this.#headers(), body: translation.body });
  }

  #headers(): Record<string, string> {
    return { 'content-type': 'application/json', ...this.#translation.headers };
  }

  async request(): Promise<UpstreamRequest> {
    const translation = this.#translation;
    return {
      origin: this.#endpoint.origin,
      path: translation.path,
      method: 'POST',
      headers: { ...this.#headers(), ...(await this.#auth()) },
      body: translation.body,
    };
  }

  async responseHead(upstream: Dispatcher.ResponseData): Promise<void> {
    if (upstream.statusCode >= 300) throw await bedrockFailureOf(upstream);
  }

  async answer(upstream: Dispatcher.ResponseData, signal: ClientSignal): Promise<ForwardResult> {
    const exchange = this.#exchange;
    const translation = this.#translation;
    const models = { modelServed: translation.modelServed, modelRequested: translation.modelRequested };
    if (!translation.stream) {
      const { body, usage } = await whole(upstream, translation);
      exchange.send(200, { 'content-type': 'application/json' }, body);
      return { status: 200, outcome: 'complete', ttfbMs: exchange.elapsedMs, usage, usageComplete: true, ...models };
    }
    const translator = translation.streamTranslator();
    let ttfbMs = 0;
    // The stream's head goes out with its first event: one that fails before any is answered
    // with Bedrock's own status as JSON (the relay rejects), not a 200 with an error event.
    const outcome = await relay(upstream.body, exchange.res, translator, {
      signal,
      head: () => {
        exchange.res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          'request-id': exchange.id,
          'x-ccproxy-request-id': exchange.id,
        });
        ttfbMs = exchange.elapsedMs;
      },
    });
    return {
      status: 200,
      outcome,
      ttfbMs,
      usage: translator.usage,
      usageComplete: outcome === 'complete',
      ...models,
    };
  }
}

/**
 * A whole answer, read and translated. A body that is cut short, not JSON, or not a whole
 * response is the upstream's failure (502), never the proxy's (500).
 */
async function whole(
  upstream: Dispatcher.ResponseData,
  translation: BedrockTranslation,
): Promise<{ body: string; usage: Usage }> {
  let text: string;
  try {
    text = await upstream.body.text();
  } catch (error) {
    throw fromUpstreamFailure(error);
  }
  try {
    return translation.whole(text);
  } catch (error) {
    if (error instanceof ProxyError) throw error;
    throw new ProxyError('PRX_UPSTREAM_BROKEN', 'Bedrock answered with a body that is not a whole response.', {
      cause: error,
    });
  }
}

/** A Bedrock error answer → our error, by exception name (the same mapping for every operation). */
export async function bedrockFailureOf(upstream: Dispatcher.ResponseData): Promise<ProxyError> {
  const text = await upstream.body.text().catch(() => '');
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { message?: string; Message?: string };
    message = parsed.message ?? parsed.Message;
  } catch {
    message = undefined;
  }
  const name = upstream.headers['x-amzn-errortype'];
  return fromBedrockFailure({ name: Array.isArray(name) ? name[0] : name, status: upstream.statusCode, message });
}
