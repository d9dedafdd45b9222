import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSchemathesis, schemathesisPython } from './schemathesis.ts';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

/**
 * Schema-driven fuzzing of the facade's own OpenAPI document (schemathesis, from PyPI) against
 * the real app in local mode, with every check schemathesis has (`--checks all`): whatever it
 * sends, nothing answers 5xx, and every answer matches what the document promises for it.
 * Bounded by examples per operation and by time.
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

  it('passes every schemathesis check on every operation (examples, coverage, fuzzing, stateful)', async () => {
    const started = Date.now();
    const result = await runSchemathesis(
      python,
      [
        `${url}/admin/openapi.json`,
        // Every check schemathesis has: no 5xx, only documented statuses, content types, headers
        // and bodies, valid data accepted, invalid data refused, auth not ignored, 405 + Allow for
        // undocumented methods, deleted resources gone, created ones reachable.
        '--checks',
        'all',
        '--phases',
        'examples,coverage,fuzzing,stateful',
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
        // Self-service acts on the ProxyUser linked to a single sign-on identity; the fuzzer's
        // break-glass session has none (every answer a 403). admin/test/self-service.test.ts
        // covers those routes with developers signed in at a real issuer. Ending sessions could end
        // the fuzzer's own, like logging out (admin/test/admin-sessions.test.ts covers them).
        '--exclude-path-regex',
        '^/admin/api/(my|sessions/)',
        '--request-timeout',
        '10',
        // Fuzzing and the stateful phase repeat until this budget is spent.
        '--max-time',
        '75',
      ],
      240_000,
      // What JSON Schema cannot state (cross-field rules, references to other resources), one by one.
      fileURLToPath(new URL('schemathesis.toml', import.meta.url)),
    );
    const seconds = (Date.now() - started) / 1000;
    expect(result.output).not.toMatch(/Server error|500 Internal/);
    expect(result.code, result.output.slice(-6000)).toBe(0);
    expect(result.output).toMatch(/✅ Stateful/);
    expect(seconds, 'the fuzz run stays bounded').toBeLessThan(120);
    // The fuzz never took the process down, and the folder is still one the operator reads.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await admin.operator.sync()).problems).toEqual([]);
  }, 300_000);
});
