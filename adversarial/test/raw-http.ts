import { connect, type Socket } from 'node:net';

/** What came back on a raw connection: the parsed head and body, and how the socket ended. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
  /** ms from the first byte written until the server closed the connection (or the wait ended). */
  closedAfterMs: number;
  /** Whether the server closed the connection (false: the wait timed out with it still open). */
  closed: boolean;
}

/** Opens a loopback connection; resolves once connected. */
export async function openSocket(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/**
 * Collects everything the server sends until it closes the connection, or `waitMs` passes.
 * Bytes the server sent are parsed as one HTTP/1.1 response (status 0 when there were none).
 */
export function collect(socket: Socket, waitMs: number): Promise<RawResponse> {
  const started = performance.now();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    const done = (closed: boolean) => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      resolve({ ...parse(raw), raw, closed, closedAfterMs: performance.now() - started });
      if (!closed) socket.destroy();
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.once('close', () => done(true));
  });
}

/** Writes `text` (a whole request, `connection: close`) and collects the answer. */
export async function rawRequest(port: number, text: string, waitMs = 5_000): Promise<RawResponse> {
  const socket = await openSocket(port);
  const answer = collect(socket, waitMs);
  socket.write(text);
  return answer;
}

/** A request with a JSON body, written as-is: the path is not normalised by any client library. */
export function postText(path: string, body = '{}', headers: Record<string, string> = {}): string {
  const lines = [
    `POST ${path} HTTP/1.1`,
    'host: 127.0.0.1',
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

function parse(raw: string): Pick<RawResponse, 'status' | 'headers' | 'body'> {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) return { status: 0, headers: {}, body: '' };
  const [statusLine = '', ...lines] = raw.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.slice(headEnd + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd === -1) return out;
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!(size > 0)) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 4 + size);
  }
}
