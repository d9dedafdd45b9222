import { fetchUtils, type AuthProvider, type DataProvider } from 'react-admin';
import simpleRestProvider from 'ra-data-simple-rest';

/**
 * The session token lives in sessionStorage, sent as `Authorization: Bearer`: no cookie, so
 * no ambient credential for cross-site requests, and it is gone when the tab closes.
 */
const tokenKey = 'ccproxy-admin-token';
export const apiUrl = '/admin/api';

export const httpClient = (url: string, options: fetchUtils.Options = {}) => {
  const token = sessionStorage.getItem(tokenKey);
  const headers = new Headers(options.headers ?? { Accept: 'application/json' });
  if (token !== null) headers.set('Authorization', `Bearer ${token}`);
  return fetchUtils.fetchJson(url, { ...options, headers });
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

/** What each resource's PUT accepts: the API refuses unknown keys, so the rest is dropped here. */
const editable: Record<string, readonly string[]> = {
  users: ['resourceVersion', 'displayName', 'description', 'suspended'],
  'access-keys': ['resourceVersion', 'routing', 'revoked', 'bedrock'],
  'bedrock-keys': ['apiKey'],
};

const base = simpleRestProvider(apiUrl, httpClient);

export const dataProvider: DataProvider = {
  ...base,
  update(resource, params) {
    const fields = editable[resource] ?? [];
    const data = Object.fromEntries(
      Object.entries(params.data as Record<string, unknown>).filter(
        ([key, value]) => fields.includes(key) && value !== null && value !== undefined,
      ),
    );
    return base.update(resource, { ...params, data });
  },
  create(resource, params) {
    if (resource !== 'bedrock-keys') return base.create(resource, params);
    // The form picks an access key by id (`namespace/name`); the Bedrock key lives beside it.
    const { accessKeyId, name, apiKey } = params.data as { accessKeyId: string; name: string; apiKey: string };
    const [namespace = '', accessKey = ''] = accessKeyId.split('/', 2);
    return base.create(resource, { ...params, data: { namespace, name, accessKey, apiKey } });
  },
};
