import { describe, expect, it } from 'vitest';
import {
  canonicalRequest,
  signature,
  signingKey,
  stringToSign,
  verifySigV4,
  type SignedRequest,
} from '../src/sigv4-verifier.ts';

/**
 * AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite, the vectors from the
 * AWS General Reference's "Signature Version 4 test suite": credentials AKIDEXAMPLE, 2015-08-30
 * 12:36:00 UTC, us-east-1, service "service"). Each expected signature is AWS's; the verifier
 * computes its own from the request alone.
 */
const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const host = 'example.amazonaws.com';
const amzDate = '20150830T123600Z';
const stsToken =
  'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==';

interface Vector {
  name: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  signature: string;
}

const vectors: Vector[] = [
  {
    name: 'get-vanilla',
    method: 'GET',
    url: '/',
    signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  },
  {
    name: 'get-header-key-duplicate',
    method: 'GET',
    url: '/',
    headers: { 'my-header1': 'value2,value2,value1' },
    signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  },
  {
    name: 'get-header-value-order',
    method: 'GET',
    url: '/',
    headers: { 'my-header1': 'value4,value1,value3,value2' },
    signature: '08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01',
  },
  {
    name: 'get-header-value-trim',
    method: 'GET',
    url: '/',
    headers: { 'my-header1': ' value1', 'my-header2': ' "a   b   c"' },
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
  {
    name: 'get-unreserved',
    method: 'GET',
    url: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f',
  },
  {
    name: 'get-utf8',
    method: 'GET',
    url: '/ሴ',
    signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85',
  },
  {
    name: 'get-vanilla-query-order-key-case',
    method: 'GET',
    url: '/?Param2=value2&Param1=value1',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'get-vanilla-utf8-query',
    method: 'GET',
    url: `/?${encodeURIComponent('ሴ')}=bar`,
    signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04',
  },
  {
    name: 'post-vanilla',
    method: 'POST',
    url: '/',
    signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
  },
  {
    name: 'post-header-value-case',
    method: 'POST',
    url: '/',
    headers: { 'my-header1': 'VALUE1' },
    signature: 'cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d',
  },
  {
    name: 'post-vanilla-query',
    method: 'POST',
    url: '/?Param1=value1',
    signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11',
  },
  {
    name: 'post-sts-header-before',
    method: 'POST',
    url: '/',
    headers: { 'x-amz-security-token': stsToken },
    signature: '85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
  },
  {
    name: 'post-x-www-form-urlencoded',
    method: 'POST',
    url: '/',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'Param1=value1',
    signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
  },
];

const requestOf = (vector: Vector): SignedRequest & { signedHeaders: string[] } => {
  const headers: Record<string, string> = { host, 'x-amz-date': amzDate, ...vector.headers };
  return {
    method: vector.method,
    url: vector.url,
    headers,
    body: Buffer.from(vector.body ?? ''),
    signedHeaders: Object.keys(headers).sort(),
  };
};

const at = Date.parse('2015-08-30T12:36:00Z');
const authorizationOf = (vector: Vector, credential = `AKIDEXAMPLE/20150830/us-east-1/service/aws4_request`) =>
  `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=${requestOf(vector).signedHeaders.join(';')}, Signature=${vector.signature}`;
const options = {
  region: 'us-east-1',
  service: 'service',
  secrets: (id: string) => (id === 'AKIDEXAMPLE' ? { secretAccessKey: secret } : undefined),
  now: at,
};
const verify = (vector: Vector, change: Partial<SignedRequest> = {}, more: Partial<typeof options> = {}) => {
  const request = requestOf(vector);
  return verifySigV4(
    {
      ...request,
      headers: { ...request.headers, authorization: authorizationOf(vector) },
      ...change,
    },
    { ...options, ...more },
  );
};

describe('SigV4 verifier against the AWS test suite', () => {
  it.each(vectors)('$name: computes AWS’s signature and accepts it', (vector) => {
    const request = requestOf(vector);
    const computed = signature(
      signingKey(secret, '20150830', 'us-east-1', 'service'),
      stringToSign(
        amzDate,
        '20150830/us-east-1/service/aws4_request',
        canonicalRequest(request, request.signedHeaders),
      ),
    );
    expect(computed).toBe(vector.signature);
    expect(verify(vector)).toEqual({ ok: true, accessKeyId: 'AKIDEXAMPLE' });
  });

  it('matches the suite’s canonical request and string to sign for get-vanilla', () => {
    const request = requestOf(vectors[0] as Vector);
    const canonical = canonicalRequest(request, request.signedHeaders);
    expect(canonical).toBe(
      'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(stringToSign(amzDate, '20150830/us-east-1/service/aws4_request', canonical)).toBe(
      'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
    );
  });

  const post = vectors.find((v) => v.name === 'post-x-www-form-urlencoded') as Vector;
  it('refuses what Bedrock refuses, with its names', () => {
    const refused = (verdict: ReturnType<typeof verify>) => (verdict.ok ? 'accepted' : verdict.name);
    expect(refused(verify(post, { body: Buffer.from('Param1=value2') })), 'tampered body').toBe(
      'InvalidSignatureException',
    );
    expect(refused(verify({ ...post, signature: '0'.repeat(64) })), 'wrong signature').toBe(
      'InvalidSignatureException',
    );
    expect(refused(verify(post, {}, { region: 'us-west-2' })), 'wrong region').toBe('InvalidSignatureException');
    expect(refused(verify(post, {}, { service: 'bedrock' })), 'wrong service').toBe('InvalidSignatureException');
    expect(refused(verify(post, {}, { now: at + 5 * 60_000 + 1 })), 'stale x-amz-date').toBe(
      'InvalidSignatureException',
    );
    expect(refused(verify(post, {}, { now: at + 5 * 60_000 })), 'within five minutes').toBe('accepted');
    expect(refused(verify(post, {}, { secrets: () => undefined })), 'unknown key').toBe('UnrecognizedClientException');
    expect(
      refused(verify(post, {}, { secrets: () => ({ secretAccessKey: secret, sessionToken: 'x' }) })),
      'missing session token',
    ).toBe('UnrecognizedClientException');
    expect(refused(verify(post, { headers: { host, 'x-amz-date': amzDate } })), 'no authorization').toBe(
      'MissingAuthenticationTokenException',
    );
    const stale = verify(post, {}, { now: at + 10 * 60_000 });
    expect(stale.ok ? '' : stale.message).toBe(
      'Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T124600Z - 5 min.)',
    );
  });
});
