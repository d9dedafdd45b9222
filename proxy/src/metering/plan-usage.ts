import type { Usage } from '@ccproxy/core';
import { eventAround, isLineEnd } from '../pipeline/sse-framing.ts';

/**
 * The one needle searched per relayed chunk: the common part of the three event names read
 * (`message_start`, `message_delta`, `message_stop`), whether the field has its optional space
 * (`event: message_`) or not (`event:message_`). Data lines of those events hit it too (their
 * `"type"`); a hit counts only as the value of an `event` field at the start of a line.
 */
const needle = Buffer.from('message_');
const eventField = Buffer.from('event:');
const space = 0x20;

/** Largest non-streaming JSON answer that is read (and, on the Plan path, held and checked). */
export const maxCheckedJsonBytes = 16 * 1024 * 1024;

/**
 * Reads token usage from a Plan answer as it is relayed, without touching the bytes: from the
 * SSE `message_start` (input and cache tokens, model) and `message_delta` events (output tokens;
 * other counts there are cumulative totals that overwrite), or from a JSON message's `usage`.
 * It also tells whether the stream's `message_stop` went through (the stream-completeness rule).
 * Per request, not thread-safe.
 */
export class PlanUsageObserver {
  usage: Usage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  model: string | null = null;
  #sawStart = false;
  #sawEnd = false;
  #stopped = false;
  readonly #json: Buffer[] = [];
  #jsonBytes = 0;

  /** True once the answer's final usage was seen (`message_delta`, or a whole JSON message). */
  get complete(): boolean {
    return this.#sawEnd;
  }

  /** True once a whole `message_stop` event with parseable data was relayed. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Whole SSE events as forwarded to the client (the buffer starts at an event boundary). The
   * events are parsed by the SSE rules (any line ends, `data` over several lines, comments and
   * other fields, either field order); only the few it reads are, so the cost per chunk is one
   * search.
   */
  observeEvents(events: Buffer): void {
    for (let at = events.indexOf(needle); at !== -1; at = events.indexOf(needle, at + needle.length)) {
      const field = events[at - 1] === space ? at - eventField.length - 1 : at - eventField.length;
      if (field < 0 || (field > 0 && !isLineEnd(events[field - 1])) || !isAt(events, field, eventField)) continue;
      const event = eventAround(events, field);
      if (event.data === undefined) continue; // an event without data is not dispatched
      if (event.name === 'message_start') this.#read(event.data, (data) => this.#onStart(data));
      else if (event.name === 'message_delta') this.#read(event.data, (data) => this.#onDelta(data));
      else if (event.name === 'message_stop' && event.ended)
        this.#read(event.data, (data) => {
          this.#stopped ||= (data as { type?: unknown } | null)?.type === 'message_stop';
        });
    }
  }

  /** A chunk of a non-streaming body; parsed once the body is complete. */
  observeJsonChunk(chunk: Buffer): void {
    this.#jsonBytes += chunk.length;
    if (this.#jsonBytes <= maxCheckedJsonBytes) this.#json.push(chunk);
  }

  /**
   * Ends a non-streaming body: reads the usage of a message. Returns whether the body is
   * complete JSON (undefined when it was too large to read), the one parse the Plan path's
   * check of a held answer reuses.
   */
  finishJson(): boolean | undefined {
    if (this.#jsonBytes > maxCheckedJsonBytes) return undefined;
    let message: { model?: string; usage?: Partial<Usage>; type?: string } | null;
    try {
      message = JSON.parse(Buffer.concat(this.#json, this.#jsonBytes).toString('utf8')) as typeof message;
    } catch {
      return false; // truncated or garbled: nothing to meter
    }
    if (message?.type !== 'message' || message.usage === undefined) return true;
    this.model = typeof message.model === 'string' ? message.model : null;
    this.#merge(message.usage);
    this.#sawEnd = true;
    return true;
  }

  #read(data: string, onData: (data: unknown) => void): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return; // A malformed event is the client's to see; metering just skips it.
    }
    if (typeof parsed === 'object' && parsed !== null) onData(parsed);
  }

  #onStart(data: unknown): void {
    const message = (data as { message?: { model?: string; usage?: Partial<Usage> } }).message;
    this.#sawStart = true;
    if (typeof message?.model === 'string') this.model = message.model;
    if (message?.usage !== undefined) this.#merge(message.usage);
  }

  #onDelta(data: unknown): void {
    const usage = (data as { usage?: Partial<Usage> }).usage;
    if (usage !== undefined) this.#merge(usage);
    this.#sawEnd = this.#sawStart;
  }

  #merge(usage: Partial<Usage> | null): void {
    if (typeof usage !== 'object' || usage === null) return;
    for (const field of [
      'input_tokens',
      'output_tokens',
      'cache_creation_input_tokens',
      'cache_read_input_tokens',
    ] as const) {
      const value = usage[field];
      if (typeof value === 'number') this.usage[field] = value;
    }
  }
}

function isAt(buffer: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buffer.length) return false;
  for (let i = 0; i < word.length; i += 1) if (buffer[at + i] !== word[i]) return false;
  return true;
}
