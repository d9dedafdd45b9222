import { pino, type Logger, type DestinationStream, type Level } from 'pino';
import { censored, censorSecrets, secretKeyNames } from './censor-secrets.ts';

/**
 * pino applies `formatters.log` to lines but not to child bindings, so bindings get exact
 * (wildcard-free, hence nearly free) redact paths: a secret-named binding, or one under `headers`.
 */
const bindingPaths = secretKeyNames.flatMap((name) => {
  const key = /^[A-Za-z]+$/.test(name) ? name : `["${name}"]`;
  const nested = key.startsWith('[') ? key : `.${key}`;
  return [key, `headers${nested}`, `req.headers${nested}`];
});

export type { Logger } from 'pino';

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
      // Credentials are censored in every line wherever they are nested, and in child bindings.
      formatters: { log: censorSecrets, bindings: censorSecrets },
      redact: { paths: bindingPaths, censor: censored },
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
