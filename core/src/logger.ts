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

/**
 * Any run of 16 or more characters between URL delimiters: access keys are at least 24 (bring
 * your own) or 46 (generated) characters, and a key percent-encoded, in a query string, behind
 * `/AK/`, `/%61k/` or any other spelling the router does not serve is still such a run.
 */
const longToken = /[^/?&=#;,\s]{16,}/g;

/**
 * `/ak/ak_abcdefgh…/v1/messages` → `/ak/ak_abc…/v1/messages`: every long token of a URL is cut
 * to its first 6 characters, whatever the spelling of the path, so a key never reaches a log
 * line whole (Anthropic paths are short; a long model id in a logged URL is cut too).
 */
export function redactKeyInUrl(url: string): string {
  return url.replace(longToken, (token) => `${token.slice(0, 6)}…`);
}
