import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('../../node_modules/@anthropic-ai/claude-code/', import.meta.url));

/** The real Claude Code binary of the pinned devDependency (`@anthropic-ai/claude-code`). */
export const claudeCodeBinary = join(packageDir, 'bin', 'claude.exe');

/** The version of that binary, as installed (the root package.json pins it exactly). */
export const claudeCodeVersion = (
  JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }
).version;

/** One line of `--output-format stream-json` (`system`, `assistant`, `user`, `stream_event`, `result`, …). */
export interface StreamJsonEvent {
  type: string;
  subtype?: string;
  session_id?: string;
  message?: { content?: Array<Record<string, unknown>>; usage?: Record<string, unknown> };
  event?: { type?: string; delta?: { type?: string; text?: string } };
  [field: string]: unknown;
}

export interface ResultEvent extends StreamJsonEvent {
  type: 'result';
  is_error: boolean;
  result?: string;
  api_error_status?: number | null;
  usage?: Record<string, unknown>;
  structured_output?: unknown;
}

export interface ClaudeRun {
  events: StreamJsonEvent[];
  /** The final `result` line; undefined when Claude Code wrote none. */
  result: ResultEvent | undefined;
  sessionId: string | undefined;
  exitCode: number | null;
  stderr: string;
  /** Every tool_result Claude Code fed back, as it showed them in its `user` lines. */
  toolResults: Array<{ tool_use_id: string; is_error: boolean; content: string }>;
  ms: number;
  /**
   * Every connection Claude Code tried to open beyond loopback during the run (`CONNECT host:port`
   * or a proxied URL), as the outbound sink saw it: refused there, so nothing leaves the machine.
   */
  outbound: string[];
}

export interface ClaudeRunOptions {
  /** The `ANTHROPIC_BASE_URL` (a proxy's `/ak/<key>` URL). */
  baseUrl: string;
  prompt: string;
  /** Its own HOME (sessions live under it: resume with the same HOME and cwd). */
  home: string;
  cwd: string;
  /** Extra arguments after `-p <prompt> --output-format stream-json --verbose`. */
  args?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * A loopback HTTP proxy that refuses every request and CONNECT and records its target: Claude
 * Code runs with it as `HTTPS_PROXY`/`HTTP_PROXY` (loopback exempt), so any attempt to reach
 * the internet (telemetry, feature flags, updates) is seen and stopped. One per test process.
 */
let sink: Promise<{ url: string; seen: string[] }> | undefined;
function outboundSink(): Promise<{ url: string; seen: string[] }> {
  sink ??= (async () => {
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
      res.writeHead(502).end();
    });
    server.on('connect', (req, socket) => {
      seen.push(`CONNECT ${req.url ?? ''}`);
      // The client may reset the refused tunnel; that is not the sink's failure.
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    server.unref();
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
  })();
  return sink;
}

/**
 * The environment Claude Code runs in: built from nothing (no proxy variables, no credentials
 * of the machine), loopback base URL, and every documented switch that stops it phoning home
 * (telemetry, error reporting, auto-updater, non-essential traffic).
 */
export function claudeCodeEnv(
  options: Pick<ClaudeRunOptions, 'baseUrl' | 'home' | 'env'> & { outboundProxy?: string },
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...(options.outboundProxy === undefined
      ? {}
      : {
          HTTPS_PROXY: options.outboundProxy,
          HTTP_PROXY: options.outboundProxy,
          NO_PROXY: '127.0.0.1,localhost',
        }),
    HOME: options.home,
    ANTHROPIC_BASE_URL: options.baseUrl,
    ANTHROPIC_API_KEY: 'sk-ant-developer-own',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_BUG_COMMAND: '1',
    ...options.env,
  };
}

/** `claude -p <prompt> --output-format stream-json --verbose`, stdin closed, its lines parsed. */
export async function runClaudeCode(options: ClaudeRunOptions): Promise<ClaudeRun> {
  await mkdir(options.home, { recursive: true });
  await mkdir(options.cwd, { recursive: true });
  const outbound = await outboundSink();
  const before = outbound.seen.length;
  const started = Date.now();
  const child = spawn(
    claudeCodeBinary,
    ['-p', options.prompt, '--output-format', 'stream-json', '--verbose', ...(options.args ?? [])],
    {
      cwd: options.cwd,
      env: claudeCodeEnv({ ...options, outboundProxy: outbound.url }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000);
  const [exitCode] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  const events = Buffer.concat(out)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as StreamJsonEvent);
  const result = events.findLast((event): event is ResultEvent => event.type === 'result');
  return {
    events,
    result,
    sessionId: result?.session_id ?? events[0]?.session_id,
    exitCode,
    stderr: Buffer.concat(err).toString('utf8'),
    toolResults: toolResultsOf(events),
    ms: Date.now() - started,
    // Runs in parallel share the sink: what arrived during this run is attributed to it (an upper bound).
    outbound: outbound.seen.slice(before),
  };
}

function toolResultsOf(events: StreamJsonEvent[]): ClaudeRun['toolResults'] {
  return events
    .filter((event) => event.type === 'user')
    .flatMap((event) => event.message?.content ?? [])
    .filter((block) => block.type === 'tool_result')
    .map((block) => ({
      tool_use_id: String(block.tool_use_id),
      is_error: block.is_error === true,
      content: typeof block.content === 'string' ? block.content : JSON.stringify(block.content),
    }));
}
