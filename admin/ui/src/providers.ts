import { fetchUtils, HttpError, type AuthProvider } from 'react-admin';

/**
 * A break-glass login's token lives in sessionStorage, sent as `Authorization: Bearer`: no
 * cookie, and it is gone when the tab closes. A single sign-on session is an HttpOnly cookie the
 * page never sees; `ssoKey` only remembers that one was set (the server still decides), and
 * every write carries `X-CCProxy-CSRF: 1`, which the server requires with the cookie.
 */
export const tokenKey = 'ccproxy-admin-token';
export const ssoKey = 'ccproxy-admin-sso';
export const apiUrl = '/admin/api';
const csrfHeader = { 'X-CCProxy-CSRF': '1' };

/** What the signed-in session may do, as /admin/auth/session says (the server enforces it). */
export interface Permissions {
  username: string;
  name: string | null;
  role: 'admin' | 'team-admin' | 'viewer' | 'developer';
  method: 'oidc' | 'break-glass';
  read: 'all' | string[];
  write: 'all' | string[];
  /** May use My keys (in a developer group). */
  selfService: boolean;
}

/** May this session change resources in `namespace` (any namespace when none is given)? */
export function canWrite(permissions: Permissions | undefined, namespace?: string): boolean {
  const write = permissions?.write;
  if (write === undefined) return false;
  if (write === 'all') return true;
  return namespace === undefined ? write.length > 0 : write.includes(namespace);
}

let session: Promise<Permissions> | undefined;
function readSession(): Promise<Permissions> {
  session ??= httpClient('/admin/auth/session').then(({ json }) => json as Permissions);
  session.catch(() => (session = undefined));
  return session;
}
const signedIn = () => sessionStorage.getItem(tokenKey) !== null || sessionStorage.getItem(ssoKey) !== null;

/**
 * The facade's 400s list every failing JSON path as `body/<path>: <message>`; react-admin's
 * forms put `body.errors` (an object shaped like the form) on the fields. One translation here
 * serves every form; `rename` maps an API field to the form's name for it. The whole message
 * also goes to `root.serverError`, which every form shows above its fields (ServerErrors), so
 * a problem with no field of its own is never invisible.
 */
export function fieldErrors(
  message: string,
  problems: readonly string[],
  rename: Record<string, string> = {},
): Record<string, unknown> {
  const errors: Record<string, unknown> = { root: { serverError: message } };
  for (const problem of problems) {
    const match = /^body\/([^:]+): (.*)$/s.exec(problem);
    if (match === null) continue;
    const path = (match[1] ?? '').split('/');
    // modelMap entries are keyed by a model name (any text): the whole map is one field.
    const fieldPath =
      path[0] === 'bedrock' && path[1] === 'modelMap'
        ? ['modelMapRows']
        : path.map((segment, index) => (index === 0 ? (rename[segment] ?? segment) : segment));
    let node = errors;
    for (const segment of fieldPath.slice(0, -1)) {
      const next = node[segment];
      node = (typeof next === 'object' && next !== null ? next : (node[segment] = {})) as Record<string, unknown>;
    }
    const last = fieldPath[fieldPath.length - 1] as string;
    node[last] = node[last] === undefined ? match[2] : `${String(node[last])}; ${match[2]}`;
  }
  return errors;
}

/** API field → form field, where a form names it differently (the forms pick a user or an access key by id). */
const formNames = { accessKey: 'accessKeyId', user: 'userId' };

export const httpClient = async (url: string, options: fetchUtils.Options = {}) => {
  const token = sessionStorage.getItem(tokenKey);
  const headers = new Headers(options.headers ?? { Accept: 'application/json' });
  // A request without a body carries no Content-Type: ra-data-simple-rest labels its DELETE
  // text/plain, which the facade (JSON only) rightly refuses with 415.
  if (options.body === undefined) headers.delete('Content-Type');
  if (token !== null) headers.set('Authorization', `Bearer ${token}`);
  headers.set('X-CCProxy-CSRF', '1');
  try {
    return await fetchUtils.fetchJson(url, { ...options, headers });
  } catch (error) {
    const body = error instanceof HttpError ? (error.body as { problems?: string[] } | undefined) : undefined;
    if (!(error instanceof HttpError) || body?.problems === undefined) throw error;
    throw new HttpError(error.message, error.status, {
      ...body,
      errors: fieldErrors(error.message, body.problems, formNames),
    });
  }
};

export const authProvider: AuthProvider = {
  async login({ username, password }: { username: string; password: string }) {
    const response = await fetch('/admin/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const body = (await response.json()) as { token?: string; message?: string };
    if (!response.ok || body.token === undefined) throw new Error(body.message ?? 'Login failed');
    session = undefined;
    sessionStorage.setItem(tokenKey, body.token);
  },
  async logout() {
    const token = sessionStorage.getItem(tokenKey);
    const sso = sessionStorage.getItem(ssoKey);
    sessionStorage.removeItem(tokenKey);
    sessionStorage.removeItem(ssoKey);
    session = undefined;
    if (token !== null || sso !== null)
      await fetch('/admin/auth/logout', {
        method: 'POST',
        headers: token === null ? csrfHeader : { Authorization: `Bearer ${token}` },
      }).catch(() => undefined);
  },
  async checkAuth() {
    if (!signedIn()) throw new Error('Not logged in');
  },
  async checkError(error: { status?: number }) {
    if (error.status === 401) {
      sessionStorage.removeItem(tokenKey);
      sessionStorage.removeItem(ssoKey);
      session = undefined;
      throw new Error('Session expired');
    }
  },
  async getIdentity() {
    const me = await readSession();
    const scope = me.role === 'team-admin' && me.write !== 'all' ? `: ${me.write.join(', ')}` : '';
    return { id: me.username, fullName: `${me.name ?? me.username} (${me.role}${scope})` };
  },
  async getPermissions() {
    return signedIn() ? readSession() : undefined;
  },
};
