import { startLocalAdmin, type LocalAdmin, type LocalAdminOptions } from './admin-fixture.ts';

/** A JSON answer: an object (an error's message and problems) or a list's rows. */
export type Answer = Record<string, unknown> & { message?: string; problems?: string[] } & Array<
    Record<string, unknown>
  >;

interface ParameterSchema {
  pattern?: string;
  const?: string;
  enum?: string[];
  anyOf?: ParameterSchema[];
}

/** The query parameters an operation requires, each with a value its schema allows (`by=user`). */
export const requiredQuery = (operation: Operation) =>
  (operation.parameters ?? [])
    .filter((parameter) => parameter.in === 'query' && parameter.required === true)
    .map((parameter) => `${parameter.name}=${encodeURIComponent(allowed(parameter.schema) ?? '')}&`)
    .join('');
const allowed = (schema: ParameterSchema): string | undefined =>
  schema.const ?? schema.enum?.[0] ?? (schema.anyOf?.[0] === undefined ? undefined : allowed(schema.anyOf[0]));

/** What the tests read of an operation of the OpenAPI document. */
export interface Operation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: ParameterSchema }>;
  requestBody?: { required?: boolean };
}

/** The local-mode admin listening on a loopback port, called over real HTTP with a session. */
export interface HttpAdmin {
  admin: LocalAdmin;
  call(
    method: string,
    url: string,
    payload?: unknown,
  ): Promise<{ status: number; body: Answer; headers: Headers; text: string }>;
  close(): Promise<void>;
}

export async function startHttpAdmin(options: LocalAdminOptions = {}): Promise<HttpAdmin> {
  const admin = await startLocalAdmin({}, options);
  const base = await admin.app.listen({ port: 0, host: '127.0.0.1' });
  const { authorization } = await admin.auth();
  return {
    admin,
    async call(method, url, payload) {
      const response = await fetch(`${base}${url}`, {
        method,
        headers: { authorization, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      });
      const text = await response.text();
      const json = response.headers.get('content-type')?.includes('json') === true && text !== '';
      return {
        status: response.status,
        body: (json ? JSON.parse(text) : null) as Answer,
        headers: response.headers,
        text,
      };
    },
    close: () => admin.close(),
  };
}

/** `/admin/api/users/{id}` with `{id}` filled in: a namespaced id, or a bare key name for My keys. */
export const fillPath = (path: string, id = 'team-a/alice') =>
  path.replace('{id}', encodeURIComponent(path.startsWith('/admin/api/my-keys/') ? 'alice-key' : id));

/** Every operation of the OpenAPI document (every route but the hidden ones), as method and path. */
export async function operations(http: HttpAdmin): Promise<Array<{ method: string; path: string; doc: Operation }>> {
  const document = (await http.call('GET', '/admin/openapi.json')).body as unknown as {
    paths: Record<string, Record<string, Operation>>;
  };
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([method]) => method !== 'parameters')
      .map(([method, doc]) => ({ method: method.toUpperCase(), path, doc })),
  );
}
