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
 * The access-key segment, in every spelling that reaches a log line: after the start, a `/` or a
 * `%2F`, the segment `ak` in any case and with either letter percent-encoded (`/AK/`, `/%61k/`),
 * then one or more `/` or `%2F` (`/ak//`, `/ak%2F`). The router serves only `/ak/<key>/…`, but
 * every other spelling is logged too (as a 404). The key segment is everything up to the next
 * `/`, whatever its characters: a key holding `;`, `,`, `=`, `&`, `?`, `#` or `%` (raw or
 * percent-encoded) is one segment all the same, and with no `/` after it the query string goes too.
 */
const keySegment = /(^|\/|%2f)((?:a|%61)(?:k|%6b)(?:\/|%2f)+)([^/]+)/gi;

/**
 * Anywhere else (a key in a query string, behind `/metrics/`, in absolute form), any run of 16 or
 * more characters between `/`, `?`, `#` and whitespace: access keys are at least 24 (bring your
 * own) or 46 (generated) characters of `A-Z a-z 0-9 . _ ~ -` (the operator refuses any other),
 * so a key in any spelling — percent-encoded, after `key=`, between `&` and `;` — is such a run.
 */
const longToken = /[^/?#\s]{16,}/g;

/** What is left of a key or a long token: enough to tell them apart, never a usable piece. */
const keptChars = 6;

const cut = (text: string): string => (text.length > keptChars ? `${text.slice(0, keptChars)}…` : text);

/**
 * The one redaction of every URL or path that reaches a log line (the pipeline's and fastify's
 * "request failed" lines, the handler's last-resort error line):
 * `/ak/ak_abcdefgh…/v1/messages` → `/ak/ak_abc…/v1/messages`. The access-key segment is cut to
 * its first 6 characters whole, whatever the key's characters and the spelling of `/ak/`; every
 * other run of 16 or more characters is cut the same way, so a key sent where the router does
 * not look for one is cut too (Anthropic paths are short; a long model id in a logged URL is cut
 * as well).
 */
export function redactKeyInUrl(url: string): string {
  return url
    .replace(keySegment, (_match, before: string, prefix: string, key: string) => `${before}${prefix}${cut(key)}`)
    .replace(longToken, cut);
}
