import { pino, type Logger, type DestinationStream, type Level } from 'pino';

export type { Logger } from 'pino';

/** Header and field paths that may carry credentials; pino censors them wherever they appear. */
const redactPaths = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'headers["x-api-key"]',
  'headers.authorization',
  '*.headers["x-api-key"]',
  '*.headers.authorization',
  'accessKey',
  '*.accessKey',
  'apiKey',
  '*.apiKey',
  'password',
  '*.password',
];

export interface LoggerOptions {
  level?: Level | 'silent';
  /** Where lines go; tests pass a stream to assert on them. Defaults to stdout. */
  destination?: DestinationStream;
  name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      ...(options.name === undefined ? {} : { name: options.name }),
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

const accessKeyInPath = /\/ak\/([^/?#]*)/;

/** `/ak/ak_abcdefgh…/v1/messages` → `/ak/ak_abcdef…/v1/messages`: the key never reaches a log line whole. */
export function redactKeyInUrl(url: string): string {
  return url.replace(accessKeyInPath, (_match, key: string) => `/ak/${key.slice(0, 6)}…`);
}
