import { fetchUtils, HttpError, type AuthProvider } from 'react-admin';

/**
 * The session token lives in sessionStorage, sent as `Authorization: Bearer`: no cookie, so
 * no ambient credential for cross-site requests, and it is gone when the tab closes.
 */
export const tokenKey = 'ccproxy-admin-token';
export const apiUrl = '/admin/api';

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
    sessionStorage.setItem(tokenKey, body.token);
  },
  async logout() {
    const token = sessionStorage.getItem(tokenKey);
    sessionStorage.removeItem(tokenKey);
    if (token !== null)
      await fetch('/admin/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(
        () => undefined,
      );
  },
  async checkAuth() {
    if (sessionStorage.getItem(tokenKey) === null) throw new Error('Not logged in');
  },
  async checkError(error: { status?: number }) {
    if (error.status === 401) {
      sessionStorage.removeItem(tokenKey);
      throw new Error('Session expired');
    }
  },
  async getIdentity() {
    const { json } = await httpClient('/admin/auth/session');
    const session = json as { username: string };
    return { id: session.username, fullName: session.username };
  },
  async getPermissions() {
    return undefined;
  },
};
