import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSchemathesis, schemathesisPython } from './schemathesis.ts';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * Schema-driven fuzzing of the facade's own OpenAPI document (schemathesis, from PyPI) against
 * the real app in local mode: whatever it sends, nothing answers 5xx, and every answer matches
 * what the document promises for it. Bounded by examples per operation and by time.
 */
describe('admin facade under schemathesis', () => {
  let admin: LocalAdmin;
  let url: string;
  let python: string;
  let authorization: string;

  beforeAll(async () => {
    python = await schemathesisPython();
    admin = await startLocalAdmin({ loginAttempts: 1_000 });
    url = await admin.app.listen({ port: 0, host: '127.0.0.1' });
    authorization = (await admin.auth()).authorization;
    // Something to find: a user with a key, so reads by id also reach existing objects.
    await admin.app.inject({
      method: 'POST',
      url: '/admin/api/users',
      headers: { authorization },
      payload: { namespace: 'team-a', name: 'alice' },
    });
    await admin.app.inject({
      method: 'POST',
      url: '/admin/api/access-keys',
      headers: { authorization },
      payload: { namespace: 'team-a', name: 'alice-laptop', user: 'alice' },
    });
  }, 300_000);
  afterAll(async () => admin?.close());

  it('finds no server error in any operation', async () => {
    const result = await runSchemathesis(
      python,
      [
        `${url}/admin/openapi.json`,
        '--checks',
        'not_a_server_error',
        '--max-examples',
        '20',
        // The id pattern (namespace/name) makes the generator discard many path candidates; that is
        // the schema being precise, not a problem to fail on.
        '--suppress-health-check',
        'filter_too_much',
        '--seed',
        '1',
        '--workers',
        '1',
        '--header',
        `Authorization: ${authorization}`,
        // Logging out would end the fuzzer's own session halfway.
        '--exclude-path',
        '/admin/auth/logout',
        '--request-timeout',
        '10',
      ],
      240_000,
    );
    expect(result.output).not.toMatch(/Server error|500 Internal/);
    expect(result.code, result.output.slice(-4000)).toBe(0);
    // The fuzz never took the process down, and the folder is still one the operator reads.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await admin.operator.sync()).problems).toEqual([]);
  }, 300_000);
});
