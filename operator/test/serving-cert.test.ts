import { describe, expect, it } from 'vitest';
import { ensureServingSecret, generateServingCert, webhookTlsLabels } from '@ccproxy/operator/kube';

/**
 * The webhook's own TLS Secret is used only while its certificate serves: every name the API
 * server may dial, within its validity. Seen: a Service renamed (CCPROXY_WEBHOOK_SERVICE) kept
 * the old name's certificate; the API server refused it, failurePolicy Ignore hid that, and the
 * replica said it was serving.
 */
describe('the webhook serving certificate from its Secret', () => {
  const names = ['ccproxy-operator.ops.svc', 'ccproxy-operator.ops.svc.cluster.local', '127.0.0.1'];
  const secretHolding = async (certNames: string[], now?: Date) => {
    const cert = await generateServingCert(certNames, now);
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tls', namespace: 'ops', labels: { ...webhookTlsLabels } },
      data: { 'tls.crt': b64(cert.certPem), 'tls.key': b64(cert.keyPem), 'ca.crt': b64(cert.caPem) },
    };
  };
  const clientWith = (secret: unknown) => {
    const created: unknown[] = [];
    return {
      created,
      readSecret: async () => secret as never,
      createSecret: async (_namespace: string, body: unknown) => (created.push(body), undefined),
    };
  };

  it('serves a certificate naming every name, and writes nothing', async () => {
    const client = clientWith(await secretHolding(names));
    const cert = await ensureServingSecret(client, 'ops', 'tls', names);
    expect(cert.certPem).toContain('BEGIN CERTIFICATE');
    expect(client.created).toEqual([]);
  });

  it('refuses a certificate for another Service name, naming what it lacks and what to do, and writes nothing', async () => {
    const client = clientWith(await secretHolding(['old-name.ops.svc', 'old-name.ops.svc.cluster.local', '127.0.0.1']));
    await expect(ensureServingSecret(client, 'ops', 'tls', names)).rejects.toMatchObject({
      name: 'ForeignSecretError',
      message: expect.stringMatching(
        /Secret ops\/tls: its certificate does not name ccproxy-operator\.ops\.svc, ccproxy-operator\.ops\.svc\.cluster\.local \(it has DNS:old-name\.ops\.svc.*delete the Secret and restart the operator/,
      ),
    });
    expect(client.created).toEqual([]);
  });

  it('refuses an expired certificate', async () => {
    const client = clientWith(await secretHolding(names, new Date(Date.now() - 3651 * 86_400_000)));
    await expect(ensureServingSecret(client, 'ops', 'tls', names)).rejects.toMatchObject({
      name: 'ForeignSecretError',
      message: expect.stringContaining('is not valid now'),
    });
  });
});
