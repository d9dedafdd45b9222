import { ProxyError, type Usage } from '@ccproxy/core';
import { fromConverseCitation } from './citations.ts';
import type { ConverseCitation, ConverseStopReason, ConverseUsage } from './converse-types.ts';
import type { EventFrame } from './event-stream-frames.ts';
import { EventStreamTranslator } from './event-stream-translator.ts';
import { fromConverseUsage, fromStopReason } from './response.ts';
import { SkippedMembers, unionMember, type WarnLog } from './skipped-members.ts';
import { deltaEvent, sse, type StringDelta } from './sse-events.ts';
import type { ToolNameMap } from './tool-names.ts';
import { toAnthropicToolUseId } from './provenance.ts';

type BlockKind = 'text' | 'thinking' | 'tool_use' | 'redacted_thinking';
interface OpenBlock {
  index: number;
  kind: BlockKind;
}

/** A `ContentBlockDelta` union value; members beyond these are skipped by the one rule in `#delta`. */
interface Delta {
  text?: string;
  toolUse?: { input?: string };
  reasoningContent?: { text?: string; signature?: string; redactedContent?: string };
  citation?: ConverseCitation;
  [member: string]: unknown;
}

export interface StreamContext {
  model: string;
  messageId: string;
  requestId: string;
  toolNames: ToolNameMap;
  /** Where skipped (unknown) members of Bedrock's unions are reported; the request's logger. */
  log?: WarnLog;
}

/**
 * ConverseStream (AWS event-stream bytes) → Anthropic SSE, as the Anthropic SDK's MessageStream
 * expects it: `message_start` + `ping`; a block's `content_block_start` deferred until its first
 * delta says what it is (Bedrock starts text and reasoning blocks with a delta); contiguous
 * indices of our own; every block closed before `message_delta`, which carries the stop reason
 * and the whole usage from the trailing `metadata` event. The stream always ends with
 * `message_stop` or `error`. A member of Bedrock's unions it does not know (an event, a block
 * start, a delta, a citation location) is skipped and logged once, never a failure. Created per
 * request; not thread-safe.
 */
export class ConverseStreamTranslator extends EventStreamTranslator {
  readonly #context: StreamContext;
  readonly #blocks = new Map<number, OpenBlock>();
  #nextIndex = 0;
  #started = false;
  #stopReason: ConverseStopReason | undefined;
  #stopSequence: string | null = null;
  #usage: Usage = fromConverseUsage(undefined);
  #sawMetadata = false;
  readonly #skipped: SkippedMembers;

  constructor(context: StreamContext) {
    super(context.requestId);
    this.#context = context;
    this.#skipped = new SkippedMembers(context.log);
  }

  /** The union members skipped so far, as `Union.member`. */
  get skipped(): ReadonlySet<string> {
    return this.#skipped.seen;
  }

  get usage(): Usage {
    return this.#usage;
  }

  /**
   * Upstream ended. A stream cut short (no `messageStop`, or no `metadata` with the usage, or
   * half a frame) ends with an error, never silently: the same completeness rule as the Plan relay.
   */
  finish(): string {
    if (this.ended) return '';
    if (this.#stopReason === undefined || !this.#sawMetadata || this.frames.pending > 0)
      return this.truncate('Bedrock ended the stream before messageStop and its metadata.');
    try {
      return this.#complete();
    } catch (error) {
      return this.fail(
        error instanceof ProxyError ? error : new ProxyError('PRX_BEDROCK_ERROR', undefined, { cause: error }),
      );
    }
  }

  protected onEvent(frame: EventFrame): string {
    const payload = frame.payload as Record<string, unknown>;
    switch (frame.name) {
      case 'messageStart':
        return this.#start();
      case 'contentBlockStart':
        return this.#start() + this.#blockStart(payload);
      case 'contentBlockDelta':
        return this.#start() + this.#delta(payload.contentBlockIndex as number, (payload.delta ?? {}) as Delta);
      case 'contentBlockStop':
        return this.#close(payload.contentBlockIndex as number);
      case 'messageStop':
        this.#stopReason = payload.stopReason as ConverseStopReason;
        this.#stopSequence =
          ((payload.additionalModelResponseFields as { stop_sequence?: string } | undefined)?.stop_sequence as
            string | undefined) ?? null;
        return '';
      case 'metadata':
        this.#sawMetadata = true;
        this.#usage = fromConverseUsage(payload.usage as Partial<ConverseUsage> | undefined);
        return this.#stopReason === undefined ? '' : this.#complete();
      default:
        this.#skipped.note('ConverseStreamOutput', frame.name);
        return '';
    }
  }

  #start(): string {
    if (this.#started) return '';
    this.#started = true;
    const message = {
      id: this.#context.messageId,
      type: 'message',
      role: 'assistant',
      model: this.#context.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    return sse('message_start', { type: 'message_start', message }) + sse('ping', { type: 'ping' });
  }

  #blockStart(payload: Record<string, unknown>): string {
    const start = payload.start as Record<string, unknown> | undefined;
    const member = unionMember(start);
    if (member !== 'toolUse') {
      // Text and reasoning start with a delta; any other start (tool result, image, newer) is skipped.
      this.#skipped.note('ContentBlockStart', member ?? '(none)');
      return '';
    }
    const toolUse = start?.toolUse as { toolUseId: string; name: string };
    return this.#open(payload.contentBlockIndex as number, 'tool_use', {
      type: 'tool_use',
      id: toAnthropicToolUseId(toolUse.toolUseId),
      name: this.#context.toolNames.fromBedrock(toolUse.name),
      input: {},
    });
  }

  #delta(bedrockIndex: number, delta: Delta): string {
    const member = unionMember(delta);
    switch (member) {
      case 'text':
        return this.#ensure(bedrockIndex, 'text') + this.#stringDelta(bedrockIndex, ['text_delta', 'text'], delta.text);
      case 'toolUse': {
        const open = this.#blocks.get(bedrockIndex);
        if (open?.kind !== 'tool_use')
          throw new ProxyError('PRX_BEDROCK_ERROR', 'Bedrock sent tool input for a block that is not a tool call.');
        return this.#stringDelta(bedrockIndex, ['input_json_delta', 'partial_json'], delta.toolUse?.input ?? '');
      }
      case 'reasoningContent':
        return this.#reasoning(bedrockIndex, delta.reasoningContent ?? {});
      case 'citation': {
        // Anthropic sends a cited span's citations on its text block, before or among its text.
        const citation = fromConverseCitation(delta.citation ?? {}, this.#skipped);
        if (citation === undefined) return '';
        return (
          this.#ensure(bedrockIndex, 'text') + this.#emitDelta(bedrockIndex, { type: 'citations_delta', citation })
        );
      }
      default:
        this.#skipped.note('ContentBlockDelta', member ?? '(none)');
        return '';
    }
  }

  #reasoning(bedrockIndex: number, reasoning: NonNullable<Delta['reasoningContent']>): string {
    if (reasoning.redactedContent !== undefined)
      return this.#open(bedrockIndex, 'redacted_thinking', {
        type: 'redacted_thinking',
        data: reasoning.redactedContent,
      });
    if (reasoning.text === undefined && reasoning.signature === undefined) {
      this.#skipped.note('ReasoningContentBlockDelta', unionMember(reasoning) ?? '(none)');
      return '';
    }
    // A signature may be a thinking block's first (or only) delta, as with display "omitted".
    let out = this.#ensure(bedrockIndex, 'thinking');
    if (reasoning.text !== undefined)
      out += this.#stringDelta(bedrockIndex, ['thinking_delta', 'thinking'], reasoning.text);
    if (reasoning.signature !== undefined)
      out += this.#stringDelta(bedrockIndex, ['signature_delta', 'signature'], reasoning.signature);
    return out;
  }

  #ensure(bedrockIndex: number, kind: 'text' | 'thinking'): string {
    const open = this.#blocks.get(bedrockIndex);
    if (open?.kind === kind) return '';
    // A block that changes kind under the same Bedrock index is closed and a new one opened.
    const closed = open === undefined ? '' : this.#close(bedrockIndex);
    return (
      closed +
      this.#open(
        bedrockIndex,
        kind,
        kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' },
      )
    );
  }

  #open(bedrockIndex: number, kind: BlockKind, contentBlock: Record<string, unknown>): string {
    const index = this.#nextIndex++;
    this.#blocks.set(bedrockIndex, { index, kind });
    return sse('content_block_start', { type: 'content_block_start', index, content_block: contentBlock });
  }

  #emitDelta(bedrockIndex: number, delta: Record<string, unknown>): string {
    const open = this.#blocks.get(bedrockIndex) as OpenBlock;
    return sse('content_block_delta', { type: 'content_block_delta', index: open.index, delta });
  }

  /** The common deltas (text, tool input, thinking, signature): one string, through the template. */
  #stringDelta(bedrockIndex: number, kind: StringDelta, value: unknown): string {
    return deltaEvent((this.#blocks.get(bedrockIndex) as OpenBlock).index, kind, value);
  }

  #close(bedrockIndex: number): string {
    const open = this.#blocks.get(bedrockIndex);
    if (open === undefined) return '';
    this.#blocks.delete(bedrockIndex);
    return sse('content_block_stop', { type: 'content_block_stop', index: open.index });
  }

  #complete(): string {
    let out = this.#start();
    for (const bedrockIndex of [...this.#blocks.keys()]) out += this.#close(bedrockIndex);
    const stopReason = fromStopReason(this.#stopReason);
    this.end();
    return (
      out +
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: this.#stopSequence },
        usage: this.#usage,
      }) +
      sse('message_stop', { type: 'message_stop' })
    );
  }
}
