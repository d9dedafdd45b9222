import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { converseServiceRules } from './bedrock-rules.ts';
import { sendScripted, type ScriptedReply } from './bedrock-scripted.ts';
import { defaultInvokeReply, sendInvoke, validateInvoke, type InvokeAnthropicReply } from './bedrock-invoke.ts';
import { SmithyValidator } from './smithy-validator.ts';
import { verifySigV4, type AwsSecret } from './sigv4-verifier.ts';

export type ConverseBlock =
  | { text: string }
  | { toolUse: { toolUseId: string; name: string; input: Record<string, unknown> } }
  | { reasoningContent: { reasoningText: { text: string; signature: string } } };

export interface BedrockRecordedRequest {
  /** The operation served: `Converse`, `ConverseStream`, `InvokeModel`, `InvokeModelWithResponseStream`, `CountTokens`. */
  operation: string;
  path: string;
  modelId: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** The access key id of a verified SigV4 signature; undefined for a Bearer API key. */
  signedBy?: string;
}

export interface BedrockServerOptions {
  /** The Bedrock API key accepted as `Authorization: Bearer …`. */
  apiKey?: string;
  /** AWS identities accepted by SigV4 signature (service `bedrock`), verified independently. */
  aws?: { region: string; secrets: (accessKeyId: string) => AwsSecret | undefined | Promise<AwsSecret | undefined> };
}

export type BedrockReply =
  | { kind: 'message'; content: ConverseBlock[]; stopReason?: string; usage?: Record<string, number> }
  | { kind: 'error'; status: number; name: string; message: string }
  /** A streamed answer that breaks: after `afterFrames` frames, an exception frame, a reset, silence, or a clean end. */
  | {
      kind: 'broken';
      content: ConverseBlock[];
      afterFrames: number;
      then: { exception: string; message: string } | 'reset' | 'stall' | 'end';
    }
  /** A non-streaming answer of exactly these bytes (a garbled or cut-short Converse body). */
  | { kind: 'raw'; status: number; body: Buffer }
  /** Exactly these Converse blocks / stream events (citations, members the proxy does not know). */
  | ScriptedReply
  /** A streamed answer of exactly these event-stream frames (shapes the default renderer does not make). */
  | { kind: 'frames'; frames: Uint8Array[] }
  /**
   * InvokeModel only: the native Anthropic message Bedrock's Claude writes (citations, cache
   * usage), sent whole or as `chunk` frames of its Anthropic stream events (bedrock-invoke.ts).
   */
  | InvokeAnthropicReply;

export type BedrockResponder = (
  body: Record<string, unknown>,
  request: BedrockRecordedRequest,
) => BedrockReply | undefined;

export interface BedrockTestServer {
  readonly url: string;
  readonly requests: BedrockRecordedRequest[];
  respondWith(responder: BedrockResponder | undefined): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const route = /^\/model\/([^/]+)\/(converse|converse-stream|count-tokens|invoke|invoke-with-response-stream)$/;
const operations: Readonly<Record<string, string>> = {
  converse: 'Converse',
  'converse-stream': 'ConverseStream',
  'count-tokens': 'CountTokens',
  invoke: 'InvokeModel',
  'invoke-with-response-stream': 'InvokeModelWithResponseStream',
};

/**
 * A Bedrock Runtime server on 127.0.0.1:0: Converse and ConverseStream (and InvokeModel /
 * InvokeModelWithResponseStream, bedrock-invoke.ts) with Bearer auth, every
 * request validated strictly against the Smithy model plus the service's unwritten rules (a
 * violation is the real service's `400 ValidationException`), answers in AWS event-stream
 * framing. By default it plays the same model as the Anthropic test server (RUN_BASH: → Bash
 * tool call; a tool result → `Tool said: …`).
 */
export async function startBedrockServer(options: BedrockServerOptions): Promise<BedrockTestServer> {
  const validator = new SmithyValidator();
  const requests: BedrockRecordedRequest[] = [];
  let responder: BedrockResponder | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => void handle());
    const handle = async () => {
      const match = route.exec(req.url ?? '');
      if (req.method !== 'POST' || match === null)
        return error(res, 404, 'UnknownOperationException', 'Unknown operation');
      const auth = await authenticate(
        { method: 'POST', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) },
        options,
      );
      if (!auth.ok) return error(res, 403, auth.name, auth.message);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return error(res, 400, 'SerializationException', 'Malformed JSON');
      }
      const modelId = decodeURIComponent(match[1] ?? '');
      const operation = operations[match[2] ?? ''] ?? '';
      if (operation.startsWith('InvokeModel')) {
        const invoke = {
          stream: operation !== 'InvokeModel',
          modelId,
          headers: req.headers,
          payload: Buffer.concat(chunks),
        };
        const problems = validateInvoke(validator, invoke, body);
        if (problems.length > 0) return error(res, 400, 'ValidationException', problems.join('; '));
        const recorded = {
          operation,
          path: req.url ?? '',
          modelId,
          headers: req.headers,
          body,
          signedBy: auth.signedBy,
        };
        requests.push(recorded);
        const reply = responder?.(body, recorded) ?? defaultInvokeReply(body);
        if (reply.kind === 'error') return error(res, reply.status, reply.name, reply.message);
        if (reply.kind === 'raw')
          return void res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
        // Exact frames (chunk frames a test builds) go out as they are, for either family.
        if (reply.kind === 'frames') return void writeFrames(res, reply.frames, 'end');
        // Scripted Converse blocks have no InvokeModel rendering: say so.
        if (reply.kind === 'scripted')
          return error(res, 500, 'InternalServerException', 'test server: a scripted reply is Converse-only');
        return void sendInvoke(res, reply, invoke);
      }
      if (match[2] === 'count-tokens')
        return countTokens(
          res,
          validator,
          modelId,
          body,
          { operation, path: req.url ?? '', modelId, headers: req.headers, body, signedBy: auth.signedBy },
          requests,
          responder,
        );
      const stream = match[2] === 'converse-stream';
      const problems = [
        ...validator.validate(stream ? 'ConverseStreamRequest' : 'ConverseRequest', body),
        ...converseServiceRules(body),
      ];
      if (problems.length > 0) return error(res, 400, 'ValidationException', problems.join('; '));
      const recorded = { operation, path: req.url ?? '', modelId, headers: req.headers, body, signedBy: auth.signedBy };
      requests.push(recorded);
      const reply = responder?.(body, recorded) ?? defaultReply(body);
      if (reply.kind === 'error') return error(res, reply.status, reply.name, reply.message);
      if (reply.kind === 'anthropic')
        return error(res, 500, 'InternalServerException', 'test server: an anthropic reply is InvokeModel-only');
      if (reply.kind === 'scripted') return sendScripted(res, reply, stream, validator);
      if (reply.kind === 'raw')
        return void res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
      if (!stream && reply.kind === 'message') return json(res, 200, converseResponse(reply));
      void sendStream(res, reply);
    };
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    respondWith: (next) => void (responder = next),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A Bearer API key, or a SigV4 signature checked as Bedrock checks it (region, service, time, body). */
async function authenticate(
  request: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer },
  options: BedrockServerOptions,
): Promise<{ ok: true; signedBy?: string } | { ok: false; name: string; message: string }> {
  const authorization = request.headers.authorization ?? '';
  if (options.aws !== undefined && authorization.startsWith('AWS4-HMAC-SHA256 ')) {
    const id = /Credential=([^/]+)\//.exec(authorization)?.[1] ?? '';
    const secret = await options.aws.secrets(id);
    const verdict = verifySigV4(request, {
      region: options.aws.region,
      secrets: () => secret,
      service: 'bedrock',
      now: Date.now(),
    });
    return verdict.ok ? { ok: true, signedBy: verdict.accessKeyId } : verdict;
  }
  if (options.apiKey !== undefined && authorization === `Bearer ${options.apiKey}`) return { ok: true };
  return {
    ok: false,
    name: 'AccessDeniedException',
    message: 'Authentication failed: Please make sure your API Key is valid.',
  };
}

/**
 * CountTokens as the service does it: strict validation, foundation model ids only (inference
 * profiles are refused with the real message), a deterministic count (request bytes / 4).
 */
function countTokens(
  res: ServerResponse,
  validator: SmithyValidator,
  modelId: string,
  body: Record<string, unknown>,
  recorded: BedrockRecordedRequest,
  requests: BedrockRecordedRequest[],
  responder: BedrockResponder | undefined,
): void {
  const converse = (body.input as { converse?: Record<string, unknown> } | undefined)?.converse;
  const problems = [
    ...validator.validate('CountTokensRequest', body),
    ...(converse === undefined ? [] : converseServiceRules(converse)),
  ];
  if (problems.length > 0) return error(res, 400, 'ValidationException', problems.join('; '));
  requests.push(recorded);
  const reply = responder?.(body, recorded);
  if (reply?.kind === 'error') return error(res, reply.status, reply.name, reply.message);
  if (/^(global|us|eu|jp|au|apac)\./.test(modelId))
    return error(res, 400, 'ValidationException', "The provided model doesn't support counting tokens.");
  json(res, 200, { inputTokens: Math.ceil(JSON.stringify(body.input).length / 4) });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': crypto.randomUUID(), ...headers })
    .end(JSON.stringify(body));
}

function error(res: ServerResponse, status: number, name: string, message: string): void {
  json(
    res,
    status,
    { message },
    { 'x-amzn-errortype': `${name}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
  );
}

const defaultUsage = { inputTokens: 30, outputTokens: 15, totalTokens: 45 };

function converseResponse(reply: Extract<BedrockReply, { kind: 'message' }>) {
  const stopReason = reply.stopReason ?? (reply.content.some((block) => 'toolUse' in block) ? 'tool_use' : 'end_turn');
  const usage = { ...defaultUsage, ...reply.usage };
  return {
    output: { message: { role: 'assistant', content: reply.content } },
    stopReason,
    usage,
    metrics: { latencyMs: 12 },
  };
}

function frame(type: 'event' | 'exception', name: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: type },
      [type === 'event' ? ':event-type' : ':exception-type']: { type: 'string', value: name },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/** The event sequence ConverseStream sends for `content` (text and reasoning start with a delta). */
export function converseStreamFrames(
  content: ConverseBlock[],
  stopReason: string,
  usage: Record<string, number>,
): Uint8Array[] {
  const frames = [frame('event', 'messageStart', { role: 'assistant', p: 'abcdefghijkl' })];
  content.forEach((block, contentBlockIndex) => {
    if ('text' in block) {
      for (const text of [block.text.slice(0, 5), block.text.slice(5)].filter((part) => part !== ''))
        frames.push(frame('event', 'contentBlockDelta', { contentBlockIndex, delta: { text }, p: 'ab' }));
    } else if ('toolUse' in block) {
      frames.push(
        frame('event', 'contentBlockStart', {
          contentBlockIndex,
          start: { toolUse: { toolUseId: block.toolUse.toolUseId, name: block.toolUse.name } },
        }),
      );
      const input = JSON.stringify(block.toolUse.input);
      for (const part of [input.slice(0, 7), input.slice(7)].filter((p) => p !== ''))
        frames.push(frame('event', 'contentBlockDelta', { contentBlockIndex, delta: { toolUse: { input: part } } }));
    } else {
      frames.push(
        frame('event', 'contentBlockDelta', {
          contentBlockIndex,
          delta: { reasoningContent: { text: block.reasoningContent.reasoningText.text } },
        }),
      );
      frames.push(
        frame('event', 'contentBlockDelta', {
          contentBlockIndex,
          delta: { reasoningContent: { signature: block.reasoningContent.reasoningText.signature } },
        }),
      );
    }
    frames.push(frame('event', 'contentBlockStop', { contentBlockIndex }));
  });
  frames.push(
    frame('event', 'messageStop', { stopReason }),
    frame('event', 'metadata', { usage, metrics: { latencyMs: 12 } }),
  );
  return frames;
}

async function sendStream(
  res: ServerResponse,
  reply: Exclude<BedrockReply, { kind: 'error' } | { kind: 'raw' } | { kind: 'anthropic' } | ScriptedReply>,
): Promise<void> {
  if (reply.kind === 'frames') return writeFrames(res, reply.frames, 'end');
  const { stopReason, usage } = converseResponse({
    kind: 'message',
    content: reply.content,
    ...(reply.kind === 'message' ? reply : {}),
  });
  let frames = converseStreamFrames(reply.content, stopReason, usage);
  if (reply.kind === 'broken') frames = frames.slice(0, reply.afterFrames);
  await writeFrames(res, frames, reply.kind === 'broken' ? reply.then : 'end');
}

async function writeFrames(
  res: ServerResponse,
  frames: Uint8Array[],
  then: Extract<BedrockReply, { kind: 'broken' }>['then'],
): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': crypto.randomUUID() });
  for (const bytes of frames) {
    res.write(bytes);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (then === 'reset') return void res.socket?.destroy();
  if (then === 'stall') return;
  if (then === 'end') return void res.end();
  res.end(frame('exception', then.exception, { message: then.message }));
}

function defaultReply(body: Record<string, unknown>): BedrockReply {
  const messages = (body.messages ?? []) as Array<{
    role: string;
    content: Array<{ text?: string; toolResult?: { content: Array<{ text?: string }> } }>;
  }>;
  const last = messages.findLast((message) => message.role === 'user');
  const result = last?.content.find((block) => block.toolResult !== undefined)?.toolResult;
  if (result !== undefined)
    return {
      kind: 'message',
      content: [
        {
          text: `Tool said: ${result.content
            .map((part) => part.text ?? '')
            .join('')
            .trim()}`,
        },
      ],
    };
  for (const block of last?.content ?? []) {
    const command = /RUN_BASH:(.+)$/m.exec(block.text ?? '')?.[1];
    if (command !== undefined)
      return {
        kind: 'message',
        content: [
          {
            toolUse: {
              toolUseId: `tooluse_${Date.now()}`,
              name: 'Bash',
              input: { command: command.trim(), description: 'Run the requested command' },
            },
          },
        ],
      };
  }
  return { kind: 'message', content: [{ text: 'Hello from the Bedrock test server' }] };
}
