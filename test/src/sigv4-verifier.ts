import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * An independent AWS Signature Version 4 verifier for the Bedrock test server, written from the
 * specification with node:crypto only (canonical request, string to sign, signing key), so a
 * signer bug cannot hide behind the same library verifying its own output. Unit-tested against
 * AWS's published SigV4 test-suite vectors (`test/test/sigv4-verifier.test.ts`).
 */

export interface SignedRequest {
  method: string;
  /** The path and query as sent on the wire (the signer's path: already encoded once). */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface AwsSecret {
  secretAccessKey: string;
  /** Required (and compared) when the credentials are temporary. */
  sessionToken?: string;
  /** ms since epoch after which the session token is refused as expired. */
  expiresAt?: number;
}

export interface VerifyOptions {
  region: string;
  service: string;
  /** Secret by access key id; unknown ids are refused like the service refuses them. */
  secrets: (accessKeyId: string) => AwsSecret | undefined;
  now: number;
}

/** Bedrock's own refusals: 403 with the exception name in `x-amzn-errortype` and `{message}`. */
export type Verdict = { ok: true; accessKeyId: string } | { ok: false; status: 403; name: string; message: string };

const maxSkewMs = 5 * 60_000;
const authPattern =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding of everything but the unreserved characters, as SigV4 requires. */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Each path segment encoded once more (every AWS service but S3 signs the path that way). */
export function canonicalUri(path: string): string {
  return path === '' ? '/' : path.split('/').map(uriEncode).join('/');
}

export function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      const at = pair.indexOf('=');
      const [key, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      return [uriEncode(decodeURIComponent(key)), uriEncode(decodeURIComponent(value))] as const;
    })
    .sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

const headerValue = (value: string | string[] | undefined) =>
  (Array.isArray(value) ? value.join(',') : (value ?? '')).trim().replace(/\s+/g, ' ');

export function canonicalRequest(request: SignedRequest, signedHeaders: string[]): string {
  const at = request.url.indexOf('?');
  const path = at < 0 ? request.url : request.url.slice(0, at);
  const query = at < 0 ? '' : request.url.slice(at + 1);
  return [
    request.method,
    canonicalUri(path),
    canonicalQuery(query),
    ...signedHeaders.map((name) => `${name}:${headerValue(request.headers[name])}`),
    '',
    signedHeaders.join(';'),
    // The body as received: a body changed after signing cannot match.
    sha256Hex(request.body),
  ].join('\n');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
}

export function signingKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), 'aws4_request');
}

export function signature(key: Buffer, toSign: string): string {
  return createHmac('sha256', key).update(toSign).digest('hex');
}

const refuse = (name: string, message: string): Verdict => ({ ok: false, status: 403, name, message });
const mismatch = () =>
  refuse(
    'InvalidSignatureException',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  );

/** Verifies a request as Bedrock Runtime does, refusing with the service's own names and messages. */
export function verifySigV4(request: SignedRequest, options: VerifyOptions): Verdict {
  const authorization = request.headers.authorization;
  if (authorization === undefined) return refuse('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const parts = authPattern.exec(authorization);
  if (parts === null)
    return refuse('IncompleteSignatureException', `Authorization header requires existence of a valid signature.`);
  const [, accessKeyId = '', day = '', region = '', service = '', signed = '', given = ''] = parts;
  const amzDate = headerValue(request.headers['x-amz-date']);
  const signedHeaders = signed.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date') || !/^\d{8}T\d{6}Z$/.test(amzDate))
    return refuse('IncompleteSignatureException', 'Signed headers must include host and x-amz-date.');
  if (service !== options.service)
    return refuse('InvalidSignatureException', `Credential should be scoped to correct service: '${options.service}'.`);
  if (region !== options.region)
    return refuse('InvalidSignatureException', `Credential should be scoped to a valid region.`);
  if (!amzDate.startsWith(day))
    return refuse(
      'InvalidSignatureException',
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.',
    );
  const signedAt = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(options.now - signedAt) > maxSkewMs)
    return refuse(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than ${compact(options.now - maxSkewMs)} (${compact(options.now)} - 5 min.)`,
    );
  const secret = options.secrets(accessKeyId);
  if (secret === undefined)
    return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
  const token = request.headers['x-amz-security-token'];
  if (secret.sessionToken !== undefined && token !== secret.sessionToken)
    return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (secret.expiresAt !== undefined && options.now >= secret.expiresAt)
    return refuse('ExpiredTokenException', 'The security token included in the request is expired');
  const expected = signature(
    signingKey(secret.secretAccessKey, day, region, service),
    stringToSign(amzDate, `${day}/${region}/${service}/aws4_request`, canonicalRequest(request, signedHeaders)),
  );
  return timingSafeEqual(Buffer.from(expected), Buffer.from(given)) ? { ok: true, accessKeyId } : mismatch();
}

function compact(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}
