/**
 * Which `/ak/<key>/…` paths go upstream. Rule: the path after the key must be an Anthropic API
 * route — it starts with `/v1/` — and already be in normal form: segments of plain characters
 * only, so no dot-segment (`.`, `..`), no empty segment (`//`, a trailing `/`), no
 * percent-encoding at all (`%2e%2e`, `%2f`, `%5c` cannot be decoded into one of those by anyone
 * downstream) and no backslash. The query string is passed on verbatim (`?beta=true`).
 *
 * Why a prefix plus a normal form, not an allow-list of routes: Claude Code calls
 * `/v1/messages` and `/v1/messages/count_tokens`, and its newer features call `/v1/models`,
 * `/v1/files`, `/v1/skills`, `/v1/messages/batches/…` and more; a list here would break each new
 * one until someone noticed. What must never happen is a path that leaves `/v1/` (or the
 * upstream URL's own path prefix) once a server or an intermediary normalises it, and a path in
 * normal form made of unreserved characters cannot. Anthropic's ids and model names are made of
 * `[A-Za-z0-9_.-]`, so nothing Claude Code sends is refused.
 *
 * One pass over the characters, no URL object and no regular expression: this runs on every request.
 */

/** A path-segment character: RFC 3986 unreserved (`A-Z a-z 0-9 - . _ ~`) and `:` `@`. */
const segmentChar = new Uint8Array(128);
for (let code = 0; code < 128; code += 1) {
  const char = String.fromCharCode(code);
  if (/[A-Za-z0-9\-._~:@]/.test(char)) segmentChar[code] = 1;
}

const slash = 0x2f;
const dot = 0x2e;
const question = 0x3f;
const apiPrefix = '/v1/';

export interface KeyPath {
  /** The key as sent (still percent-encoded, if it was). */
  rawKey: string;
  /** `/v1/…` with the query string, to append to the upstream base URL. */
  upstreamPath: string;
}

/**
 * `/ak/<key>/v1/messages?beta=true` → the key as sent and `/v1/messages?beta=true`; undefined
 * when the path is not one the proxy forwards. `url` starts with `/ak/` (the caller's dispatch).
 */
export function splitKeyPath(url: string): KeyPath | undefined {
  let keyEnd = 4;
  while (keyEnd < url.length) {
    const code = url.charCodeAt(keyEnd);
    if (code === slash) break;
    if (code === question) return undefined;
    keyEnd += 1;
  }
  if (!url.startsWith(apiPrefix, keyEnd)) return undefined;
  const pathEnd = normalPathEnd(url, keyEnd + apiPrefix.length);
  if (pathEnd === -1) return undefined;
  return { rawKey: url.slice(4, keyEnd), upstreamPath: url.slice(keyEnd) };
}

/**
 * Scans the segments from `start` (the first character after a `/`) to the query string or
 * the end; returns where the path ends, or -1 when it is not in normal form.
 */
function normalPathEnd(url: string, start: number): number {
  let segmentStart = start;
  let index = start;
  for (; index < url.length; index += 1) {
    const code = url.charCodeAt(index);
    if (code === question) break;
    if (code === slash) {
      if (!isPlainSegment(url, segmentStart, index)) return -1;
      segmentStart = index + 1;
    } else if (code >= 128 || segmentChar[code] === 0) {
      return -1;
    }
  }
  return isPlainSegment(url, segmentStart, index) ? index : -1;
}

/** Not empty, not `.` and not `..`. */
function isPlainSegment(url: string, start: number, end: number): boolean {
  const length = end - start;
  if (length === 0) return false;
  if (length > 2) return true;
  if (url.charCodeAt(start) !== dot) return true;
  return length === 2 && url.charCodeAt(start + 1) !== dot;
}
