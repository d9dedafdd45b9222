/** Keys whose values are credentials, wherever they sit in a log object (headers, nested records, error fields). */
export const secretKeyNames = [
  'x-api-key',
  'authorization',
  'accessKey',
  'apiKey',
  'password',
  'secret',
  'token',
  'cookie',
  'set-cookie',
  'proxy-authorization',
  'x-amz-security-token',
] as const;
const secretKeys = new Set<string>(secretKeyNames.map((name) => name.toLowerCase()));

/** Deep enough for `req.headers.authorization` and `err.$response.headers[...]`, shallow enough to stay cheap. */
const maxDepth = 5;

export const censored = '[redacted]';

/**
 * Returns `value` with every credential-named key's value replaced by `[redacted]`, copying only
 * the objects on the way to a secret (the caller's objects are never changed) and returning
 * `value` itself when there is none, which is the case for almost every line.
 *
 * Why not pino's `redact`: it takes paths, so "a key anywhere" needs leading-wildcard paths, and
 * with those @pinojs/redact re-parses every path for every value of every line and binding —
 * measured at ~20 µs of a ~30 µs per-request logging cost on the proxy's hot path.
 */
export function censorSecrets<T>(value: T, depth = 0): T {
  if (typeof value !== 'object' || value === null || depth > maxDepth || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return censorArray(value, depth) as T;
  let copy: Record<string, unknown> | undefined;
  const source = value as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    const inner = source[key];
    const replaced =
      secretKeys.has(key.toLowerCase()) && inner !== undefined && inner !== null
        ? censored
        : censorSecrets(inner, depth + 1);
    if (replaced === inner) continue;
    copy ??= shallowCopy(source);
    copy[key] = replaced;
  }
  return (copy ?? value) as T;
}

function censorArray(values: unknown[], depth: number): unknown[] {
  let copy: unknown[] | undefined;
  values.forEach((inner, index) => {
    const replaced = censorSecrets(inner, depth + 1);
    if (replaced === inner) return;
    copy ??= [...values];
    copy[index] = replaced;
  });
  return copy ?? values;
}

/** Same prototype and own properties; an Error also keeps its stack, which V8 keeps off the copy. */
function shallowCopy(source: Record<string, unknown>): Record<string, unknown> {
  const copy = Object.create(
    Object.getPrototypeOf(source) as object | null,
    Object.getOwnPropertyDescriptors(source),
  ) as Record<string, unknown>;
  if (source instanceof Error)
    Object.defineProperty(copy, 'stack', {
      value: source.stack,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  return copy;
}
