import type { ServerResponse } from 'node:http';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { SmithyValidator } from './smithy-validator.ts';

/**
 * A scripted Converse answer, for what the default model never says: citations, and union members
 * the proxy does not know. `content` is the answer's `ContentBlock` list as Converse sends it;
 * `events` the exact ConverseStream events for the same answer (`streamEventsFor` derives them).
 * A script is checked against the vendored Smithy model before it is sent, like the server's own
 * answers, unless it says it is `beyondModel` (a member a newer Bedrock may add).
 */
export interface ScriptedReply {
  kind: 'scripted';
  content: Array<Record<string, unknown>>;
  events?: Array<[event: string, payload: Record<string, unknown>]>;
  stopReason?: string;
  usage?: Record<string, number>;
  beyondModel?: boolean;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const usageOf = (reply: ScriptedReply) => ({ inputTokens: 30, outputTokens: 15, totalTokens: 45, ...reply.usage });

/**
 * The events ConverseStream sends for `content`: text and reasoning start with a delta, tool use
 * with a start; a `citationsContent` block streams its citations (`citation` deltas) and then its
 * text under one index, as Anthropic does. Any other member is sent as a start of its own kind.
 */
export function streamEventsFor(reply: ScriptedReply): Array<[string, Record<string, unknown>]> {
  const events: Array<[string, Record<string, unknown>]> = [['messageStart', { role: 'assistant' }]];
  reply.content.forEach((block, contentBlockIndex) => {
    const delta = (value: Record<string, unknown>) =>
      events.push(['contentBlockDelta', { contentBlockIndex, delta: value }]);
    const [member, value] = Object.entries(block)[0] as [string, unknown];
    if (member === 'text') delta({ text: value });
    else if (member === 'citationsContent') {
      const cited = value as { content: Array<{ text: string }>; citations: Array<Record<string, unknown>> };
      for (const citation of cited.citations) delta({ citation });
      for (const part of cited.content) delta({ text: part.text });
    } else if (member === 'reasoningContent') {
      const reasoning = (value as { reasoningText: { text: string; signature: string } }).reasoningText;
      delta({ reasoningContent: { text: reasoning.text } });
      delta({ reasoningContent: { signature: reasoning.signature } });
    } else if (member === 'toolUse') {
      const { input, ...start } = value as { input: unknown };
      events.push(['contentBlockStart', { contentBlockIndex, start: { toolUse: start } }]);
      delta({ toolUse: { input: JSON.stringify(input) } });
    } else events.push(['contentBlockStart', { contentBlockIndex, start: { [member]: value } }]);
    events.push(['contentBlockStop', { contentBlockIndex }]);
  });
  events.push(
    ['messageStop', { stopReason: reply.stopReason ?? 'end_turn' }],
    ['metadata', { usage: usageOf(reply), metrics: { latencyMs: 12 } }],
  );
  return events;
}

/** Sends the script as Converse JSON or as a ConverseStream; a script off the model is a 500 naming why. */
export function sendScripted(res: ServerResponse, reply: ScriptedReply, stream: boolean, validator: SmithyValidator) {
  const response = {
    output: { message: { role: 'assistant', content: reply.content } },
    stopReason: reply.stopReason ?? 'end_turn',
    usage: usageOf(reply),
    metrics: { latencyMs: 12 },
  };
  const events = reply.events ?? streamEventsFor(reply);
  if (reply.beyondModel !== true) {
    const problems = stream
      ? events.flatMap(([event, payload]) => validator.validate('ConverseStreamOutput', { [event]: payload }))
      : validator.validate('ConverseResponse', response);
    if (problems.length > 0)
      return void res
        .writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'InternalServerException' })
        .end(JSON.stringify({ message: `scripted reply is not what Bedrock can send: ${problems.join('; ')}` }));
  }
  if (!stream) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
  for (const [event, payload] of events)
    res.write(
      codec.encode({
        headers: {
          ':message-type': { type: 'string', value: 'event' },
          ':event-type': { type: 'string', value: event },
          ':content-type': { type: 'string', value: 'application/json' },
        },
        body: fromUtf8(JSON.stringify(payload)),
      }),
    );
  res.end();
}
