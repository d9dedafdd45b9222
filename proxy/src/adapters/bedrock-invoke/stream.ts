import { ProxyError, type ErrorCode, type Usage } from '@ccproxy/core';
import type { EventFrame } from '../bedrock/event-stream-frames.ts';
import { EventStreamTranslator, malformed } from '../bedrock/event-stream-translator.ts';

const typePrefix = '{"type":"';
const eventName = /^[a-z_]+$/;

/** Anthropic error types a model's own `error` event may carry → our codes (for metering and a status before the first byte). */
const errorCodes: Readonly<Record<string, ErrorCode>> = {
  overloaded_error: 'PRX_BEDROCK_OVERLOADED',
  rate_limit_error: 'PRX_BEDROCK_RATE_LIMITED',
  invalid_request_error: 'PRX_BEDROCK_INVALID_REQUEST',
  timeout_error: 'PRX_BEDROCK_TIMEOUT',
};

/**
 * InvokeModelWithResponseStream (AWS event-stream bytes whose `chunk` events carry base64
 * `bytes`, each one Anthropic stream event as JSON) → Anthropic SSE, byte-faithful: every
 * event goes out as `event: <type>\ndata: <the JSON exactly as Bedrock sent it>\n\n`. Only
 * the events that carry usage (`message_start`, `message_delta`) are parsed; the type of the
 * others is read from the JSON's leading `{"type":"…"`. The completeness rule: the stream ends
 * with `message_stop`, or with an `event: error` (an exception frame, a malformed frame, the
 * model's own `error` event, or an upstream that ended before `message_stop`). Per request.
 * The one rewrite: `message_start`'s `model` is the name the client asked for (response.ts says why).
 */
export class InvokeStreamTranslator extends EventStreamTranslator {
  #usage: Usage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  readonly #model: string | undefined;

  constructor(requestId: string, model?: string) {
    super(requestId);
    this.#model = model;
  }

  get usage(): Usage {
    return this.#usage;
  }

  /** Upstream ended: without `message_stop` (or with half a frame), the stream ends with an error. */
  finish(): string {
    if (this.ended) return '';
    return this.truncate('Bedrock ended the stream before message_stop.');
  }

  protected onEvent(frame: EventFrame): string {
    if (frame.name !== 'chunk') return '';
    const bytes = (frame.payload as { bytes?: unknown }).bytes;
    if (typeof bytes !== 'string') throw malformed(new Error('a chunk event without bytes'));
    let json = Buffer.from(bytes, 'base64').toString('utf8');
    let type = leadingType(json);
    let data:
      | {
          type?: unknown;
          message?: { model?: unknown; usage?: Partial<Usage> };
          usage?: Partial<Usage>;
          error?: { type?: string; message?: string };
        }
      | undefined;
    if (type === undefined || type === 'message_start' || type === 'message_delta' || type === 'error') {
      data = JSON.parse(json) as typeof data;
      type = typeof data?.type === 'string' ? data.type : undefined;
    }
    if (type === undefined || !eventName.test(type))
      throw malformed(new Error('a chunk that is not an Anthropic event'));
    const started = type === 'message_start' ? data?.message : undefined;
    if (started !== undefined && this.#model !== undefined && started.model !== this.#model) {
      started.model = this.#model;
      json = JSON.stringify(data);
    }
    // An SSE data line cannot hold a line break; JSON never needs one outside strings.
    if (json.includes('\n') || json.includes('\r')) json = JSON.stringify(data ?? JSON.parse(json));
    const event = `event: ${type}\ndata: ${json}\n\n`;
    if (type === 'message_start') this.#count(data?.message?.usage);
    else if (type === 'message_delta') this.#count(data?.usage);
    else if (type === 'message_stop') this.end();
    else if (type === 'error') {
      const error = data?.error;
      this.endFailed(new ProxyError(errorCodes[error?.type ?? ''] ?? 'PRX_BEDROCK_ERROR', error?.message));
    }
    return event;
  }

  /** Counts are totals so far: each one reported overwrites (output tokens come with `message_delta`). */
  #count(usage: Partial<Usage> | undefined): void {
    if (usage === undefined || usage === null) return;
    const next = { ...this.#usage };
    for (const field of [
      'input_tokens',
      'output_tokens',
      'cache_creation_input_tokens',
      'cache_read_input_tokens',
    ] as const)
      if (typeof usage[field] === 'number') next[field] = usage[field];
    this.#usage = next;
  }
}

/** `{"type":"content_block_delta",…` → `content_block_delta`, without parsing; undefined when not in that form. */
function leadingType(json: string): string | undefined {
  if (!json.startsWith(typePrefix)) return undefined;
  const end = json.indexOf('"', typePrefix.length);
  return end === -1 ? undefined : json.slice(typePrefix.length, end);
}
