import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { anthropicError, renderSse, type ContentBlock, type Message, type Usage } from './anthropic-wire.ts';

export interface RecordedRequest {
  method: string;
  /** Path with the query string, exactly as received. */
  path: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** True when the client went away before the response was finished. */
  aborted: boolean;
}

export interface MessagesRequest {
  model?: string;
  stream?: boolean;
  messages?: Array<{ role: string; content: string | Array<{ type: string; text?: string; content?: unknown }> }>;
  [field: string]: unknown;
}

export type Reply =
  | {
      kind: 'message';
      content: ContentBlock[];
      stopReason?: Message['stop_reason'];
      usage?: Partial<Usage>;
      /** Wait this long before answering (keeps the request in flight). */
      delayMs?: number;
    }
  | { kind: 'error'; status: number; type: string; message: string; headers?: Record<string, string> }
  /** Raw bytes: the head, then each chunk (after `delayMs`), then end, reset the socket, or stall. */
  | {
      kind: 'raw';
      status?: number;
      headers?: Record<string, string>;
      chunks: Buffer[];
      delayMs?: number;
      then?: 'end' | 'reset' | 'stall';
    }
  | { kind: 'reset' }
  | { kind: 'stall' };

/** Decides the reply to a Messages request; `undefined` falls back to the default behaviour. */
export type Responder = (body: MessagesRequest, request: RecordedRequest) => Reply | undefined;

export interface AnthropicTestServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The bytes of every SSE/JSON body this server sent, by request index. */
  readonly sent: Buffer[][];
  respondWith(responder: Responder | undefined): void;
  close(): Promise<void>;
}

/**
 * An Anthropic Messages API server on 127.0.0.1:0. By default it plays the model in a Claude
 * Code tool round trip: a user text containing `RUN_BASH:<command>` gets a Bash `tool_use`;
 * a `tool_result` gets `Tool said: <result>`; anything else a greeting.
 */
export async function startAnthropicServer(): Promise<AnthropicTestServer> {
  const requests: RecordedRequest[] = [];
  const sent: Buffer[][] = [];
  let responder: Responder | undefined;
  let counter = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      counter += 1;
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        aborted: false,
      };
      requests.push(recorded);
      const out: Buffer[] = [];
      sent.push(out);
      res.on('close', () => {
        if (!res.writableFinished) recorded.aborted = true;
      });
      void answer(req, res, recorded, out, `req_test_${String(counter).padStart(6, '0')}`, responder);
    });
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sent,
    respondWith: (next) => void (responder = next),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  recorded: RecordedRequest,
  out: Buffer[],
  requestId: string,
  responder: Responder | undefined,
): Promise<void> {
  const path = recorded.path.split('?', 1)[0];
  const json = (status: number, body: string, headers: Record<string, string> = {}) => {
    out.push(Buffer.from(body));
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': requestId, ...headers }).end(body);
  };
  if (req.method === 'HEAD' || (req.method === 'GET' && path === '/')) return void res.writeHead(200).end();
  if (req.headers['x-api-key'] === undefined && req.headers.authorization === undefined) {
    return json(401, anthropicError('authentication_error', 'x-api-key header is required', requestId));
  }
  if (req.method !== 'POST' || (path !== '/v1/messages' && path !== '/v1/messages/count_tokens')) {
    return json(404, anthropicError('not_found_error', `Not found: ${req.method} ${path}`, requestId));
  }
  let body: MessagesRequest;
  try {
    body = JSON.parse(recorded.body.toString('utf8')) as MessagesRequest;
  } catch {
    return json(
      400,
      anthropicError(
        'invalid_request_error',
        'There was an issue with the format of the request body: invalid JSON',
        requestId,
      ),
    );
  }
  if (path === '/v1/messages/count_tokens')
    return json(200, JSON.stringify({ input_tokens: Math.ceil(recorded.body.length / 4) }));
  const reply = responder?.(body, recorded) ?? defaultReply(body);
  await send(res, reply, body, out, requestId, json);
}

async function send(
  res: ServerResponse,
  reply: Reply,
  body: MessagesRequest,
  out: Buffer[],
  requestId: string,
  json: (status: number, body: string, headers?: Record<string, string>) => void,
): Promise<void> {
  switch (reply.kind) {
    case 'error':
      return json(reply.status, anthropicError(reply.type, reply.message, requestId), reply.headers);
    case 'reset':
      return void res.socket?.destroy();
    case 'stall':
      return;
    case 'raw': {
      res.writeHead(reply.status ?? 200, {
        'content-type': 'text/event-stream',
        'request-id': requestId,
        ...reply.headers,
      });
      res.flushHeaders();
      for (const chunk of reply.chunks) {
        if (reply.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
        if (res.destroyed) return;
        out.push(chunk);
        res.write(chunk);
      }
      if (reply.then === 'reset') return void res.socket?.destroy();
      if (reply.then !== 'stall') res.end();
      return;
    }
    case 'message': {
      if (reply.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
      const message: Message = {
        id: `msg_test_${requestId.slice(-6)}`,
        type: 'message',
        role: 'assistant',
        model: body.model ?? 'claude-test',
        content: reply.content,
        stop_reason:
          reply.stopReason ?? (reply.content.some((block) => block.type === 'tool_use') ? 'tool_use' : 'end_turn'),
        stop_sequence: null,
        usage: {
          input_tokens: 25,
          output_tokens: 12,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          ...reply.usage,
        },
      };
      if (body.stream !== true) return json(200, JSON.stringify(message));
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'request-id': requestId,
      });
      for (const chunk of renderSse(message)) {
        out.push(chunk);
        res.write(chunk);
      }
      res.end();
    }
  }
}

function defaultReply(body: MessagesRequest): Reply {
  // Claude Code also puts `role: "system"` entries into `messages`; the turn is the last user one.
  const last = body.messages?.findLast((message) => message.role === 'user');
  const blocks = typeof last?.content === 'string' ? [{ type: 'text', text: last.content }] : (last?.content ?? []);
  const toolResult = blocks.find((block) => block.type === 'tool_result');
  if (toolResult !== undefined)
    return { kind: 'message', content: [{ type: 'text', text: `Tool said: ${textOf(toolResult.content).trim()}` }] };
  for (const block of blocks) {
    const command = /RUN_BASH:(.+)$/m.exec(block.text ?? '')?.[1];
    if (command !== undefined) {
      return {
        kind: 'message',
        content: [
          {
            type: 'tool_use',
            id: `toolu_test_${Date.now()}`,
            name: 'Bash',
            input: { command: command.trim(), description: 'Run the requested command' },
          },
        ],
      };
    }
  }
  return { kind: 'message', content: [{ type: 'text', text: 'Hello from the test server' }] };
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content.map((part: { text?: unknown }) => (typeof part.text === 'string' ? part.text : '')).join('');
  return '';
}
