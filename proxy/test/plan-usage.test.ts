import { describe, expect, it } from 'vitest';
import { PlanUsageObserver } from '../src/metering/plan-usage.ts';

const event = (name: string, data: unknown, eol = '\n') =>
  `event: ${name}${eol}data: ${JSON.stringify(data)}${eol}${eol}`;
const start = (eol?: string) =>
  event(
    'message_start',
    {
      type: 'message_start',
      message: { model: 'claude-x', usage: { input_tokens: 12, cache_read_input_tokens: 4, output_tokens: 1 } },
    },
    eol,
  );
const delta = (eol?: string) =>
  event(
    'message_delta',
    { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 30 } },
    eol,
  );
const text = (value: string) =>
  event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: value } });

function observe(...chunks: string[]): PlanUsageObserver {
  const observer = new PlanUsageObserver();
  for (const chunk of chunks) observer.observeEvents(Buffer.from(chunk));
  return observer;
}

describe('PlanUsageObserver on SSE', () => {
  it('reads input, cache and model from message_start and output from message_delta, in one chunk or many', () => {
    for (const observer of [
      observe(start() + text('hi') + delta() + event('message_stop', { type: 'message_stop' })),
      observe(start(), text('hi'), delta()),
    ]) {
      expect(observer.usage).toEqual({
        input_tokens: 12,
        output_tokens: 30,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 4,
      });
      expect(observer.model).toBe('claude-x');
      expect(observer.complete).toBe(true);
    }
  });

  it('reads CRLF- and CR-framed events and a data field without the optional space', () => {
    const observer = observe(
      start('\r\n'),
      event('ping', { type: 'ping' }, '\r') +
        'event: message_delta\rdata:{"type":"message_delta","usage":{"output_tokens":7}}\r\r' +
        event('message_stop', { type: 'message_stop' }, '\r'),
    );
    expect(observer.usage.input_tokens).toBe(12);
    expect(observer.usage.output_tokens).toBe(7);
    expect(observer.complete).toBe(true);
  });

  it('ignores an answer that quotes SSE: the marker counts only at the start of a line', () => {
    // Searched from inside the quote, the next `data:` line is content_block_stop's, which would
    // read as a message_delta without usage and mark a cut-short answer complete.
    const stop = event('content_block_stop', { type: 'content_block_stop', index: 0 });
    const quoting = observe(start(), text('an SSE stream ends with event: message_delta') + stop);
    expect(quoting.complete).toBe(false);
    expect(quoting.usage.output_tokens).toBe(1);
    const finished = observe(
      start(),
      text('event: message_delta\ndata: {"usage":{"output_tokens":999999}}\n\n') + stop,
      delta(),
    );
    expect(finished.usage.output_tokens).toBe(30);
    expect(finished.complete).toBe(true);
  });

  it('skips events whose name only begins like one it reads, and malformed data, without throwing', () => {
    const observer = observe(
      start(),
      'event: message_deltas\ndata: {"usage":{"output_tokens":5}}\n\n',
      'event: message_delta\ndata: {not json\n\n',
      'event: message_',
    );
    expect(observer.usage.output_tokens).toBe(1);
    expect(observer.complete).toBe(false);
  });

  it('reads data over several lines (joined by LF), fields in any order, comments and other fields', () => {
    const observer = observe(
      ': hello\nid: 1\ndata: {"type":"message_start",\ndata: "message":{"model":"claude-x","usage":{"input_tokens":12}}}\nretry: 5\nevent:message_start\n\n',
      'data:{"type":"message_delta",\r\ndata:"usage":{"output_tokens":9}}\r\nevent: message_delta\r\n\r\n',
    );
    expect(observer.usage.input_tokens).toBe(12);
    expect(observer.usage.output_tokens).toBe(9);
    expect(observer.model).toBe('claude-x');
    expect(observer.complete).toBe(true);
  });

  it('reads an event without data as nothing: it is not dispatched, and never reads the next event for it', () => {
    const observer = observe(start(), 'event: message_delta\n\n' + text('x'), delta());
    expect(observer.usage.output_tokens).toBe(30);
    const empty = observe(start(), 'event: message_delta\n\n' + event('ping', { usage: { output_tokens: 5 } }));
    expect(empty.usage.output_tokens).toBe(1);
    expect(empty.complete).toBe(false);
  });

  it('is stopped only by a whole message_stop event whose data parses as one', () => {
    const stop = event('message_stop', { type: 'message_stop' });
    expect(observe(start(), delta(), stop).stopped).toBe(true);
    expect(observe(start(), delta(), stop.replaceAll('\n', '\r')).stopped).toBe(true);
    expect(observe(start(), delta()).stopped).toBe(false);
    expect(observe(start(), delta(), 'event: message_stop\ndata: garbage\n\n').stopped).toBe(false);
    expect(observe(start(), delta(), 'event: message_stop\n\n').stopped).toBe(false);
    expect(observe(start(), delta(), 'event: message_stop\ndata: {"type":"message_stop"}\n').stopped).toBe(false);
    expect(observe(start(), text('event: message_stop\ndata: {"type":"message_stop"}\n\n')).stopped).toBe(false);
  });
});

describe('PlanUsageObserver on JSON', () => {
  it('says whether the body is whole JSON, and reads a message only', () => {
    const whole = new PlanUsageObserver();
    whole.observeJsonChunk(Buffer.from('{"type":"message","model":"m","usage":{"input_tokens":3,'));
    whole.observeJsonChunk(Buffer.from('"output_tokens":4}}'));
    expect(whole.finishJson()).toBe(true);
    expect(whole.usage.output_tokens).toBe(4);
    const other = new PlanUsageObserver();
    other.observeJsonChunk(Buffer.from('{"input_tokens":3}'));
    expect(other.finishJson()).toBe(true);
    expect(other.complete).toBe(false);
    const cut = new PlanUsageObserver();
    cut.observeJsonChunk(Buffer.from('{"id":"msg_'));
    expect(cut.finishJson()).toBe(false);
    const nullUsage = new PlanUsageObserver();
    nullUsage.observeJsonChunk(Buffer.from('{"type":"message","usage":null}'));
    expect(nullUsage.finishJson()).toBe(true);
  });
});
