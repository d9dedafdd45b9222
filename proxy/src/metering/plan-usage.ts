import type { Usage } from '@ccproxy/core';

/** The one prefix both events it reads share, so each relayed chunk is searched once. */
const messageEvent = Buffer.from('event: message_');
const start = Buffer.from('start');
const delta = Buffer.from('delta');
const lf = 0x0a;
const cr = 0x0d;

/**
 * Reads token usage from a Plan answer as it is relayed, without touching the bytes: from the
 * SSE `message_start` (input and cache tokens, model) and `message_delta` events (output tokens;
 * other counts there are cumulative totals that overwrite), or from a JSON message's `usage`.
 * Per request, not thread-safe.
 */
export class PlanUsageObserver {
  usage: Usage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  model: string | null = null;
  #sawStart = false;
  #sawEnd = false;
  readonly #json: Buffer[] = [];
  #jsonBytes = 0;

  /** True once the answer's final usage was seen (`message_delta`, or a whole JSON message). */
  get complete(): boolean {
    return this.#sawEnd;
  }

  /**
   * Whole SSE events as forwarded to the client. The marker counts only at the start of a line:
   * an answer that quotes SSE (`event: message_delta` inside a text delta) is not an event.
   */
  observeEvents(events: Buffer): void {
    for (
      let at = events.indexOf(messageEvent);
      at !== -1;
      at = events.indexOf(messageEvent, at + messageEvent.length)
    ) {
      if (at !== 0 && events[at - 1] !== lf && events[at - 1] !== cr) continue;
      const name = at + messageEvent.length;
      if (isAt(events, name, start)) this.#read(events, name + start.length, (data) => this.#onStart(data));
      else if (isAt(events, name, delta)) this.#read(events, name + delta.length, (data) => this.#onDelta(data));
    }
  }

  /** A chunk of a non-streaming body; parsed once the body is complete (off the response path). */
  observeJsonChunk(chunk: Buffer): void {
    this.#jsonBytes += chunk.length;
    if (this.#jsonBytes <= 8 * 1024 * 1024) this.#json.push(chunk);
  }

  finishJson(): void {
    try {
      const message = JSON.parse(Buffer.concat(this.#json).toString('utf8')) as {
        model?: string;
        usage?: Partial<Usage>;
        type?: string;
      };
      if (message.type !== 'message' || message.usage === undefined) return;
      this.model = message.model ?? null;
      this.#merge(message.usage);
      this.#sawEnd = true;
    } catch {
      // Not a message (an error body, or truncated): nothing to meter.
    }
  }

  /** Parses the `data:` line of the event whose name ends at `from`. */
  #read(events: Buffer, from: number, onData: (data: unknown) => void): void {
    if (events[from] !== lf && events[from] !== cr) return; // a longer name, e.g. `message_starting`
    const field = events.indexOf('data:', from);
    if (field === -1) return;
    // SSE allows one optional space after the colon; JSON.parse skips it anyway.
    let dataEnd = field + 5;
    while (dataEnd < events.length && events[dataEnd] !== lf && events[dataEnd] !== cr) dataEnd += 1;
    try {
      onData(JSON.parse(events.subarray(field + 5, dataEnd).toString('utf8')));
    } catch {
      // A malformed event is the client's to see; metering just skips it.
    }
  }

  #onStart(data: unknown): void {
    const message = (data as { message?: { model?: string; usage?: Partial<Usage> } }).message;
    this.#sawStart = true;
    this.model = message?.model ?? this.model;
    if (message?.usage !== undefined) this.#merge(message.usage);
  }

  #onDelta(data: unknown): void {
    const usage = (data as { usage?: Partial<Usage> }).usage;
    if (usage !== undefined) this.#merge(usage);
    this.#sawEnd = this.#sawStart;
  }

  #merge(usage: Partial<Usage>): void {
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
