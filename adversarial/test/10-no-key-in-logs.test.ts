import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessKey,
  bedrockKey,
  documents,
  proxyUser,
  secret,
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { collect, openSocket, postText, rawRequest } from './raw-http.ts';

const byoKey = `ak_byo_${randomBytes(24).toString('base64url')}`;
const bedrockApiKey = `bedrock-${randomBytes(24).toString('hex')}`;
const clientApiKey = `sk-ant-api03-${randomBytes(24).toString('base64url')}`;
const clientBearer = `bearer-${randomBytes(24).toString('hex')}`;
const cookieSecret = `cookie-${randomBytes(24).toString('hex')}`;
const adminPassword = `admin-${randomBytes(16).toString('hex')}`;
/**
 * A bring-your-own key of URL delimiters, each piece under 8 characters (the defect's own key):
 * refused by the operator now (InvalidKey), and never logged whole or in pieces either way.
 */
const delimitedKey = 'k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6';

const manifests = documents(
  proxyUser('team-s', 'sam'),
  accessKey('team-s', 'sam-generated', { user: 'sam' }),
  accessKey('team-s', 'sam-byo', { user: 'sam', secretName: 'sam-byo-secret' }),
  secret('team-s', 'sam-byo-secret', { accessKey: byoKey }),
  accessKey('team-s', 'sam-delimited', { user: 'sam', secretName: 'sam-delimited-secret' }),
  secret('team-s', 'sam-delimited-secret', { accessKey: JSON.stringify(delimitedKey) }),
  bedrockKey('team-s', 'sam-bedrock', { accessKey: 'sam-byo', secretName: 'sam-bedrock-secret' }),
  secret('team-s', 'sam-bedrock-secret', { apiKey: bedrockApiKey }),
);

/** Every spelling a secret could be written in. */
function spellings(value: string): string[] {
  const bytes = Buffer.from(value);
  const hex = [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
  return [
    value,
    encodeURIComponent(value),
    hex,
    hex.toUpperCase(),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
  ];
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/**
 * Item 10: a real `ccproxy local` (embedded PGlite under its data dir) is sent every spelling of
 * an access key we could think of, then all it wrote — stdout, stderr and every file under the
 * data dir — is searched for every secret in plain, percent-encoded and base64 forms. The one
 * legitimate holder: the generated key's own Secret YAML under `.data/secrets/`.
 */
describe('item 10: no key or secret in any log or data file, in any spelling', () => {
  let dir: string;
  let dataDir: string;
  let upstream: AnthropicTestServer;
  let first: CcproxyProcess;
  let second: CcproxyProcess;
  let generated: string;
  let generatedFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-leaks-'));
    dataDir = join(dir, '.data');
    await writeFile(join(dir, 'sam.yaml'), manifests);
    upstream = await startAnthropicServer();
    const env = {
      CCPROXY_DATA_DIR: dataDir,
      ANTHROPIC_UPSTREAM_URL: upstream.url,
      CCPROXY_ADMIN_PASSWORD: adminPassword,
      CCPROXY_LOG_LEVEL: 'trace',
    };
    first = await startCcproxy(['local', '--manifests', dir], env, { readyTimeoutMs: 60_000 });
    await first.stop();
    second = await startCcproxy(['local', '--manifests', dir], env, { readyTimeoutMs: 60_000 });
    generatedFile = join(dataDir, 'secrets', 'team-s', 'sam-generated.yaml');
    const encoded = /accessKey:\s*(\S+)/.exec(await readFile(generatedFile, 'utf8'))?.[1] ?? '';
    generated = Buffer.from(encoded, 'base64').toString('utf8');
  }, 150_000);
  afterAll(async () => {
    await second?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the generated key is shown once, on the start that generated it; later starts name its file', async () => {
    expect(generated).toMatch(/^ak_[A-Za-z0-9_-]{40,}$/);
    const shown = first.output.filter((line) => line.includes(generated));
    expect(shown).toEqual([expect.stringMatching(/export ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:\d+\/ak\/ak_/)]);
    // The banner follows readiness by a moment (stdout arrives on its own): wait for it.
    await expect
      .poll(() => second.output.join('\n'), { timeout: 5_000, interval: 50 })
      .toContain(`key kept in ${generatedFile}`);
    expect(second.output.some((line) => line.includes(generated))).toBe(false);
    // The bring-your-own key is the user's: named, never printed.
    expect(first.output.some((line) => line.includes(byoKey))).toBe(false);
  });

  it('a hostile sequence of requests leaves no secret in the logs or data files', async () => {
    const port = second.port;
    const client = { 'x-api-key': clientApiKey, authorization: `Bearer ${clientBearer}`, cookie: `s=${cookieSecret}` };
    const body = JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const encodedKey = [...Buffer.from(generated)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const paths: string[] = [];
    for (const key of [generated, byoKey, delimitedKey]) {
      paths.push(
        `/ak/${key}/v1/messages?beta=true`,
        `/AK/${key}/v1/messages`,
        `/Ak/${key}/v1/messages`,
        `/aK/${key}/v1/messages/count_tokens`,
        `/%61k/${key}/v1/messages`,
        `/%41%4B/${key}/v1/messages`,
        `//ak/${key}/v1/messages`,
        `/ak/${key}%2Fv1/messages`,
        `/ak/${key}/v2/x`,
        `/ak/${key}/../../admin`,
        `/ak/${key}`,
        `/ak/${key}/`,
        `/${key}`,
        `/v1/messages?key=${key}`,
        `/healthz?ak=${key}`,
        `/metrics/${key}`,
        `/%zz/${key}`,
        `/ak/${key}/v1/%zz`,
        `/ak/x${key}/v1/messages`,
      );
    }
    paths.push(`/ak/${encodedKey}/v1/messages`, `/AK/${encodedKey}/v1/messages`, `/ak/${encodedKey.toUpperCase()}/x`);
    for (const path of paths) {
      const answer = await rawRequest(port, postText(path, body, client), 5_000);
      expect(answer.status, path).toBeGreaterThan(0);
      expect(answer.raw).not.toContain(generated);
      expect(answer.raw).not.toContain(byoKey);
    }
    // Keys in credential headers, on routes that exist and routes that do not.
    for (const path of ['/v1/messages', `/ak/${generated}/v1/messages`, '/healthz']) {
      await rawRequest(
        port,
        postText(path, body, { 'x-api-key': generated, authorization: `Bearer ${byoKey}`, cookie: `k=${generated}` }),
      );
    }
    // An upstream that breaks (a logged 5xx with its error) and one that resets.
    upstream.respondWith(() => ({ kind: 'reset' }));
    await rawRequest(port, postText(`/ak/${generated}/v1/messages`, body, client));
    upstream.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: `echo ${clientApiKey}` }));
    await rawRequest(port, postText(`/ak/${byoKey}/v1/messages`, body, client));
    upstream.respondWith(undefined);
    // Malformed HTTP with a key in the request line and in a header.
    for (const raw of [
      `GET /ak/${generated}/v1/messages HTTP/1.1 junk\r\n\r\n`,
      `GET /AK/${generated} HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n`,
      `POST /ak/${byoKey}/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${clientApiKey}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n`,
      `GET /ak/${generated}/v1/messages HTTP/1.1\r\nhost: x\r\nbad header ${byoKey}\r\n\r\n`,
    ]) {
      const socket = await openSocket(port);
      const answer = collect(socket, 3_000);
      socket.write(raw);
      expect((await answer).raw).not.toContain(generated);
    }
    // Let the logger and the usage spool write what they have.
    await second.stop();

    const logs = [...first.output, ...second.output].join('\n');
    const secrets = {
      generated,
      byoKey,
      delimitedKey,
      bedrockApiKey,
      clientApiKey,
      clientBearer,
      cookieSecret,
      adminPassword,
    };
    const leaks: string[] = [];
    const firstBanner = first.output.find((line) => line.includes(`/ak/${generated}`));
    for (const [name, value] of Object.entries(secrets)) {
      for (const spelling of spellings(value)) {
        const inLogs = logs.split(spelling).length - 1;
        const allowed = name === 'generated' && spelling === value ? 1 : 0;
        if (inLogs > allowed) leaks.push(`${name} (${spelling.slice(0, 12)}…) ×${inLogs} in the logs`);
      }
    }
    expect(leaks).toEqual([]);
    // Nor any 8-character piece of the delimited key: its pieces between delimiters are shorter
    // than any length a redaction by runs of characters would cut.
    const pieces = Array.from({ length: delimitedKey.length - 7 }, (_, at) => delimitedKey.slice(at, at + 8));
    expect(pieces.filter((piece) => logs.includes(piece))).toEqual([]);
    // It is refused, and the log says why (naming the resource, never the key).
    expect(logs).toMatch(/"resource":"AccessKey\/team-s\/sam-delimited"[^\n]*"reason":"InvalidKey"/);
    expect(firstBanner).toBeDefined();
    // The hostile requests were logged (redacted), so the search above searched something.
    expect(logs).toMatch(/"url":"\/AK\/ak_[^"]{3}…\/v1\/messages"/);
    expect(logs).toMatch(/"url":"\/v1\/messages\?key=ak…"/);
    expect(logs).toMatch(/"url":"\/AK\/k9;Qw7…\/v1\/messages"/);
    const holders: string[] = [];
    for (const file of await filesUnder(dataDir)) {
      const content = (await readFile(file)).toString('latin1');
      for (const [name, value] of Object.entries(secrets))
        for (const spelling of spellings(value)) if (content.includes(spelling)) holders.push(`${name} in ${file}`);
    }
    // The generated key's Secret holds it (base64, as a Secret does), and nothing else holds any secret.
    expect([...new Set(holders)]).toEqual([`generated in ${generatedFile}`]);
  }, 120_000);
});
