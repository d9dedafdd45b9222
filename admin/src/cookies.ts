/** The value of cookie `name` in a Cookie header, or undefined. Values here are JWTs (no quoting). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals > 0 && part.slice(0, equals).trim() === name) {
      const value = part.slice(equals + 1).trim();
      return /^[A-Za-z0-9._-]{1,4096}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/**
 * A session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
 * it), Secure behind TLS (then also `__Host-`: host-only, path /). Max-Age 0 clears it.
 */
export function sessionCookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`]
    .concat(secure ? ['Secure'] : [])
    .join('; ');
}

/**
 * The sign-in transaction's cookie (state, nonce, PKCE verifier, signed): SameSite=Lax, since the
 * identity provider's redirect back is a cross-site top-level navigation, which Strict would
 * strip; only its own path sees it.
 */
export function transactionCookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return [`${name}=${value}`, 'Path=/admin/auth/oidc', 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`]
    .concat(secure ? ['Secure'] : [])
    .join('; ');
}
