import type { Usage } from '@ccproxy/core';

const startMarker = Buffer.from('event: message_start');
const deltaMarker = Buffer.from('event: message_delta');

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

  /** Whole SSE events as forwarded to the client. */
  observeEvents(events: Buffer): void {
    if (events.indexOf(startMarker) !== -1) this.#read(events, startMarker, (data) => this.#onStart(data));
    if (events.indexOf(deltaMarker) !== -1) this.#read(events, deltaMarker, (data) => this.#onDelta(data));
  }

  /** A chunk of a non-streaming body; parsed once the body is complete (off the response path). */
  observeJsonChunk(chunk: Buffer): void {
    this.#jsonBytes += chunk.length;
    if (this.#jsonBytes <= 8 * 1024 * 1024) this.#json.push(chunk);
  }

  finishJson(): void {
    try {
      const message = JSON.parse(Buffer.concat(this.#json).toString('utf8')) as { model?: string; usage?: Partial<Usage>; type?: string };
      if (message.type !== 'message' || message.usage === undefined) return;
      this.model = message.model ?? null;
      this.#merge(message.usage);
      this.#sawEnd = true;
    } catch {
      // Not a message (an error body, or truncated): nothing to meter.
    }
  }

  #read(events: Buffer, marker: Buffer, onData: (data: unknown) => void): void {
    for (let at = events.indexOf(marker); at !== -1; at = events.indexOf(marker, at + marker.length)) {
      const dataStart = events.indexOf('data: ', at);
      const dataEnd = events.indexOf('\n', dataStart);
      if (dataStart === -1) return;
      try {
        onData(JSON.parse(events.subarray(dataStart + 6, dataEnd === -1 ? undefined : dataEnd).toString('utf8')));
      } catch {
        // A malformed event is the client's to see; metering just skips it.
      }
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
    for (const field of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const) {
      const value = usage[field];
      if (typeof value === 'number') this.usage[field] = value;
    }
  }
}
