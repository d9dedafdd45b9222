// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API
// loaded first (ES modules evaluate imports in order).
import 'reflect-metadata';
import { KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import type { KubeClient, SecretObject } from '../kube-client.ts';

/** A CA and the serving certificate it signed, PEM. */
export interface ServingCert {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * Labels that make the webhook's TLS Secret the operator's own: a Secret of that name without
 * them was put there by someone else and is never overwritten (nor used).
 */
export const webhookTlsLabels = {
  'app.kubernetes.io/part-of': 'claude-code-proxy',
  'app.kubernetes.io/component': 'operator-webhook-tls',
} as const;

/**
 * Ten years: nothing rotates it (a rotation would need every replica and the caBundle to move in
 * step); deleting the Secret and restarting the operator makes a new one.
 */
const validityDays = 3650;
/** Node's Web Crypto, typed as the DOM's (which @peculiar/x509 is written against). */
const subtle = webcrypto.subtle as unknown as SubtleCrypto;
const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/**
 * A self-signed CA (ECDSA P-256) and a serving certificate it signed for `dnsNames` (the webhook
 * Service's names; an IP address becomes an IP SAN): the API server is given the CA as the
 * webhook's caBundle.
 */
export async function generateServingCert(dnsNames: readonly string[], now = new Date()): Promise<ServingCert> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const notBefore = new Date(now.getTime() - 5 * 60_000); // clock skew between replicas and the API server
  const notAfter = new Date(now.getTime() + validityDays * 86_400_000);
  const serial = () =>
    randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1');
  const caKeys = await subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=ccproxy-operator-webhook-ca',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = await subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dnsNames[0] ?? 'ccproxy-operator-webhook'}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        dnsNames.map((value) => ({ type: isIP(value) === 0 ? ('dns' as const) : ('ip' as const), value })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return {
    caPem: `${ca.toString('pem').trimEnd()}\n`,
    certPem: `${cert.toString('pem').trimEnd()}\n`,
    keyPem: KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string,
  };
}

/** The TLS Secret is there but not the operator's (or unreadable as one): the webhook stays off. */
export class ForeignSecretError extends Error {
  override name = 'ForeignSecretError';
}

/**
 * The webhook's serving certificate from its Secret, created when absent. Every replica calls
 * this at start: the first create wins (a plain create, 409 for the others, who read the
 * winner's), so all replicas serve one certificate and the caBundle names one CA. A Secret of
 * that name the operator did not create is never overwritten: ForeignSecretError.
 */
export async function ensureServingSecret(
  client: Pick<KubeClient, 'readSecret' | 'createSecret'>,
  namespace: string,
  name: string,
  dnsNames: readonly string[],
): Promise<ServingCert> {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const existing = await client.readSecret(namespace, name);
    if (existing !== undefined) return usable(certOf(existing, namespace), dnsNames, `Secret ${namespace}/${name}`);
    const fresh = await generateServingCert(dnsNames);
    const created = await client.createSecret(namespace, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name, namespace, labels: { ...webhookTlsLabels } },
      stringData: { 'tls.crt': fresh.certPem, 'tls.key': fresh.keyPem, 'ca.crt': fresh.caPem },
    });
    if (created !== undefined) return fresh;
    // 409: another replica created it between our read and our create; read the winner's.
  }
  throw new Error(`Secret ${namespace}/${name}: created by another writer yet not readable`);
}

/**
 * The Secret's certificate, if it still serves: it must name every name the API server may dial
 * (a renamed Service, CCPROXY_WEBHOOK_SERVICE, left a certificate for the old name, which the API
 * server refused while failurePolicy Ignore hid it and this replica said it was serving) and be
 * within its validity. The operator never updates or deletes a Secret (RBAC), so it says what to
 * do and keeps the webhook off; the reconcile's patches do the work meanwhile.
 */
function usable(cert: ServingCert, dnsNames: readonly string[], where: string): ServingCert {
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert.certPem);
  } catch {
    throw new ForeignSecretError(`${where}: tls.crt is not a certificate; the admission webhook stays off`);
  }
  const missing = dnsNames.filter((name) =>
    isIP(name) === 0 ? parsed.checkHost(name, { subject: 'never' }) === undefined : parsed.checkIP(name) === undefined,
  );
  const now = Date.now();
  const expired = Date.parse(parsed.validTo) <= now || Date.parse(parsed.validFrom) > now + 5 * 60_000;
  if (missing.length === 0 && !expired) return cert;
  const why =
    missing.length > 0
      ? `its certificate does not name ${missing.join(', ')} (it has ${parsed.subjectAltName ?? 'no names'}; was the Service renamed?)`
      : `its certificate is not valid now (${parsed.validFrom} to ${parsed.validTo})`;
  throw new ForeignSecretError(
    `${where}: ${why}. The admission webhook stays off (the operator patches the metadata itself); delete the Secret and restart the operator to make a new one`,
  );
}

function certOf(secret: SecretObject, namespace: string): ServingCert {
  const where = `Secret ${namespace}/${secret.metadata.name}`;
  const labels = secret.metadata.labels ?? {};
  if (Object.entries(webhookTlsLabels).some(([label, value]) => labels[label] !== value))
    throw new ForeignSecretError(
      `${where} exists but is not the operator's (no ${Object.entries(webhookTlsLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')} labels): it is left as it is and the admission webhook stays off; rename or remove it`,
    );
  const field = (key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
  const cert = { caPem: field('ca.crt'), certPem: field('tls.crt'), keyPem: field('tls.key') };
  if (Object.values(cert).some((pem) => !pem.includes('-----BEGIN ')))
    throw new ForeignSecretError(`${where} lacks ca.crt, tls.crt or tls.key: the admission webhook stays off`);
  return cert;
}
