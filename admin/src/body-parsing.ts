import type { FastifyInstance } from 'fastify';
import { AdminError } from './errors.ts';

/** Deepest JSON nesting a body may have; the API's deepest schema (an access key's modelMap) is 3 levels. */
export const maxJsonDepth = 32;

/**
 * Nesting depth of a JSON text, counted without parsing (brackets inside strings skipped), so a
 * 10,000-deep `[[[[…` is refused before anything recursive (typebox's Clone/Default, the
 * validator, the error walk) can run out of stack on it. One pass over bytes, no allocation.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

const unsupported = () => new AdminError('ADM_UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.');

/**
 * Bodies: JSON only, within the body limit (413) and the depth limit (400), parsed by fastify's
 * own secure-json-parse (prototype poisoning refused). Any other content type carrying a body is
 * a 415; an empty body of any type is no body, so a DELETE (react-admin sends it as text/plain,
 * without a body) or an optional-body POST works whatever its Content-Type says.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // parseAs 'string' hands a string (fastify's type says string | Buffer for either mode).
    const text = body.toString();
    if (text.length === 0) return done(null, undefined);
    if (jsonDepthExceeds(text, maxJsonDepth))
      return done(
        new AdminError('ADM_BAD_REQUEST', `Body nested deeper than ${maxJsonDepth} levels.`, [
          `body: nested deeper than ${maxJsonDepth} levels`,
        ]),
        undefined,
      );
    // Every body of this API is an object: a JSON `null` is a body of the wrong type, which the
    // validator would take for no body at all (schemathesis found a revoke answered 200 to it).
    if (text.trim() === 'null')
      return done(
        new AdminError('ADM_BAD_REQUEST', 'The body must be a JSON object, not null.', ['body: must be object']),
        undefined,
      );
    return parseJson(request, text, done);
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
    body.length === 0 ? done(null, undefined) : done(unsupported(), undefined),
  );
}
