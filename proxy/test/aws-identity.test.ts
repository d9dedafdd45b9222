import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifySigV4 } from '@ccproxy/test-harness';
import { AwsIdentity, type PreparedRequest } from '../src/pipeline/aws-identity.ts';

const request = (body: string): PreparedRequest => ({
  method: 'POST',
  host: 'bedrock-runtime.us-east-1.amazonaws.com',
  path: '/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse',
  headers: { 'content-type': 'application/json', accept: 'application/json' },
  body,
});

/** Credentials as the chain hands them out: numbered, expiring `ttlMs` after they were fetched. */
function issuer(now: () => number, ttlMs: number) {
  let issued = 0;
  const source = () => {
    issued += 1;
    return Promise.resolve({
      accessKeyId: `AKIAISSUED${String(issued).padStart(10, '0')}`,
      secretAccessKey: `secret-${issued}`,
      sessionToken: `token-${issued}`,
      expiration: new Date(now() + ttlMs),
    });
  };
  return { source, issued: () => issued };
}

const verify = (prepared: PreparedRequest, headers: Record<string, string>, secret: string, token: string) =>
  verifySigV4(
    {
      method: prepared.method,
      url: prepared.path,
      headers: { ...prepared.headers, host: prepared.host, ...headers },
      body: Buffer.from(prepared.body),
    },
    {
      region: 'us-east-1',
      service: 'bedrock',
      now: Date.now(),
      secrets: () => ({ secretAccessKey: secret, sessionToken: token }),
    },
  );

describe('the proxy’s AWS identity', () => {
  it('signs the body as sent (the independent verifier accepts it, and refuses it once the body changes)', async () => {
    const clock = () => Date.now();
    const { source } = issuer(clock, 3600_000);
    const identity = new AwsIdentity({ source, now: clock });
    const prepared = request('{"messages":[{"role":"user","content":[{"text":"ሴ hi"}]}]}');
    const headers = await identity.sign('us-east-1', prepared);
    expect(verify(prepared, headers, 'secret-1', 'token-1')).toEqual({
      ok: true,
      accessKeyId: 'AKIAISSUED0000000001',
    });
    expect(verify({ ...prepared, body: `${prepared.body} ` }, headers, 'secret-1', 'token-1')).toMatchObject({
      ok: false,
      name: 'InvalidSignatureException',
    });
  });

  it('caches credentials, fetches new ones before they expire (once for concurrent requests), never signs with expired ones', async () => {
    let now = Date.parse('2026-12-06T12:00:00Z');
    const clock = () => now;
    const { source, issued } = issuer(clock, 15 * 60_000);
    const identity = new AwsIdentity({ source, now: clock });
    const ids = async () => (await identity.credentials()).accessKeyId;
    expect(await Promise.all([ids(), ids(), ids()])).toEqual(Array(3).fill('AKIAISSUED0000000001'));
    expect(issued()).toBe(1);
    now += 9 * 60_000;
    expect(await ids(), 'still 6 minutes left: cached').toBe('AKIAISSUED0000000001');
    expect(issued()).toBe(1);
    now += 2 * 60_000;
    // Four minutes left: refreshed in the background while the valid ones keep signing.
    expect(await ids()).toBe('AKIAISSUED0000000001');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await ids()).toBe('AKIAISSUED0000000002');
    expect(issued()).toBe(2);
    now += 60 * 60_000;
    // Expired: the request waits for fresh ones.
    expect(await Promise.all([ids(), ids()])).toEqual(['AKIAISSUED0000000003', 'AKIAISSUED0000000003']);
    expect(issued()).toBe(3);
  });

  it('a chain that finds nothing is a clear misconfiguration, with no secret in it', async () => {
    const identity = new AwsIdentity({
      source: () => Promise.reject(new Error('Could not load credentials from any providers')),
    });
    await expect(identity.sign('us-east-1', request('{}'))).rejects.toMatchObject({
      code: 'PRX_BEDROCK_MISCONFIGURED',
    });
  });

  it('costs a body hash and a little more per request (micro-measure, printed)', async () => {
    const identity = new AwsIdentity({ source: issuer(Date.now, 3600_000).source });
    const timed = async (rounds: number, work: () => unknown) => {
      const started = process.hrtime.bigint();
      for (let i = 0; i < rounds; i += 1) await work();
      return Number(process.hrtime.bigint() - started) / rounds / 1000;
    };
    for (const size of [2_000, 200_000, 2_000_000]) {
      const prepared = request(JSON.stringify({ text: 'x'.repeat(size) }));
      await identity.sign('us-east-1', prepared);
      const rounds = size > 1_000_000 ? 30 : 300;
      const signUs = await timed(rounds, () => identity.sign('us-east-1', prepared));
      const hashUs = await timed(rounds, () => createHash('sha256').update(prepared.body).digest('hex'));
      console.log(
        `SigV4 signing, ${size} byte body: ${signUs.toFixed(1)} µs (its SHA-256 alone: ${hashUs.toFixed(1)} µs)`,
      );
      // Loose (a shared, loaded machine): one body hash plus a bounded overhead, never a second pass.
      expect(signUs).toBeLessThan(2.5 * hashUs + 3_000);
    }
  });
});
