import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { KmsKeyWrapper } from '@ccproxy/core';
import { startCuttableRelay, type CuttableRelay } from '@ccproxy/test-harness';

/**
 * The operator's readiness names a KMS outage (`unavailable`) until a KMS call succeeds. When the
 * only call that met the outage is never retried (its BedrockKey was deleted), `recheck` asks KMS
 * again itself, so readiness returns within one recheck of KMS's return — and never calls KMS
 * while it is reachable. moto's KMS behind a relay the test cuts.
 */
describe('KMS wrapper: an outage seen once does not stay forever', () => {
  let relay: CuttableRelay;
  let client: KMSClient;
  let keyId: string;
  const calls: string[] = [];

  beforeAll(async () => {
    relay = await startCuttableRelay(inject('motoUrl'));
    client = new KMSClient({
      region: 'us-east-1',
      endpoint: relay.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        calls.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'countCalls' },
    );
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
  });
  afterAll(async () => {
    client?.destroy();
    await relay?.close();
  });

  it('rechecks only while unavailable and only after a quiet period, and clears once KMS answers', async () => {
    const wrapper = new KmsKeyWrapper({ keyId, client, timeoutMs: 1_000 });
    calls.length = 0;
    await wrapper.recheck(0);
    expect(calls, 'no call while KMS is not known to be down').toEqual([]);

    await relay.setMode('refuse');
    await expect(wrapper.wrap(Buffer.alloc(32))).rejects.toThrow(/unavailable/);
    expect(wrapper.unavailable).toMatch(/^KMS Encrypt unavailable/);

    // Still down: a recheck fails and keeps the reason; one right after the last call waits.
    calls.length = 0;
    await wrapper.recheck(60_000);
    expect(calls).toEqual([]);
    await wrapper.recheck(0);
    expect(calls).toEqual(['EncryptCommand']);
    expect(wrapper.unavailable).toMatch(/unavailable/);

    // Back: nothing else calls KMS, and the recheck clears the outage.
    await relay.setMode('pass');
    expect(wrapper.unavailable).toBeDefined();
    await wrapper.recheck(0);
    expect(wrapper.unavailable).toBeUndefined();
    calls.length = 0;
    await wrapper.recheck(0);
    expect(calls).toEqual([]);
  });
});
