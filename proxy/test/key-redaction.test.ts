import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix, type Database } from '@ccproxy/core';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/**
 * Keys that the operator refuses today but an earlier version adopted (bring your own keys only
 * needed 24 characters), so a proxy may still serve them: one per URL delimiter, each made of
 * pieces shorter than 8 characters, plus the key the defect was found with. Whatever a key holds,
 * no log line may carry it, or any 8-character piece of it, in any spelling.
 */
const delimiters = [';', ',', '=', '&', '#', '?', '%'];
const keys = [
  ...delimiters.map((char) => ['k9', 'Qw7', 'Er5', 'Ty3', 'Ui1', 'Op0', 'As8', 'Df6', 'Gh2'].join(char)),
  'k9;Qw7,Er5=Ty3&Ui1;Op0,As8=Df6',
];

const percentEncoded = (key: string) =>
  [...Buffer.from(key)].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

/** Every spelling of the key in a request path: the ones the router serves, and the ones it answers 404. */
function spellings(key: string): string[] {
  const encoded = encodeURIComponent(key);
  const hex = percentEncoded(key);
  return [
    `/ak/${key}/v1/messages`,
    `/ak/${key}/v1/messages?beta=true`,
    `/ak/${encoded}/v1/messages`,
    `/ak/${hex}/v1/messages`,
    `/ak/${hex.toUpperCase()}/v2/nothing`,
    `/ak/${key}/v2/nothing`,
    `/AK/${key}/v2/nothing`,
    `/AK/${encoded}/v1/messages`,
    `/Ak/${key}/v1/messages`,
    `/%61k/${key}/v1/messages`,
    `/%41%4B/${encoded}/v1/messages`,
    `//ak/${key}/v1/messages`,
    `/ak//${key}/v1/messages`,
    `/ak%2F${key}/v1/messages`,
    `/ak%2f${encoded}%2Fv1%2Fmessages`,
    `/ak/${key}%2Fv1/messages`,
    `/ak/${key}`,
    `/ak/${key}?beta=true`,
    `/ak/${key}/v1/%zz`,
    `/%zz/ak/${key}/v1/messages`,
  ];
}

/** The exact bytes of a request line (no client normalises the path), with a small body. */
async function rawPost(port: number, path: string): Promise<number> {
  const body = JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 5,
    messages: [{ role: 'user', content: 'hi' }],
  });
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-api-key: sk-ant-client\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  await new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0);
}

/** The 8-character pieces of a text (and the text itself is one). */
const piecesOf = (text: string) => Array.from({ length: text.length - 7 }, (_, start) => text.slice(start, start + 8));

describe('no access key reaches a log line, whatever its characters and however the path spells it', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-key-redaction-'));
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(
      db,
      { ANTHROPIC_UPSTREAM_URL: upstream.url, CCPROXY_METER_PLAN: 'true' },
      { spoolDir: dir },
    );
    for (const key of keys) await seedKey(db, { key, routing: 'PlanOnly' });
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    await db?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it.each(keys.map((key) => [key]))('key %s: served, and never in a log line or a request row', async (key) => {
    const port = Number(new URL(proxy.url).port);
    // The key is real: its URL-safe spelling is served.
    expect(await rawPost(port, `/ak/${encodeURIComponent(key)}/v1/messages`)).toBe(200);
    const before = proxy.logs.length;
    for (const path of spellings(key)) expect(await rawPost(port, path), path).toBeGreaterThan(0);
    await proxy.usage?.flush();

    const lines = proxy.logs.slice(before);
    // Every request was logged (a failure's line names its URL), so the search below searched something.
    expect(lines.length).toBeGreaterThanOrEqual(spellings(key).length);
    expect(lines.some((line) => line.includes('"url":"/AK/'))).toBe(true);
    // The one piece of a key a line may carry is its display prefix (`keyPrefix`, as stored in Postgres).
    const text = lines.join('\n').replaceAll(`"keyPrefix":${JSON.stringify(keyPrefix(key))}`, '');
    const rows = (await db.query<{ row: string }>('SELECT row_to_json(t)::text AS row FROM token_usage t')).map(
      (r) => r.row,
    );
    const spool = await Promise.all(
      (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => readFile(join(entry.parentPath, entry.name), 'latin1')),
    );
    const needles = [
      ...piecesOf(key),
      ...piecesOf(encodeURIComponent(key)),
      percentEncoded(key),
      percentEncoded(key).toUpperCase(),
    ];
    const found = (haystack: string) => needles.filter((needle) => haystack.includes(needle));
    expect(found(text)).toEqual([]);
    expect(found(rows.join('\n'))).toEqual([]);
    expect(found(spool.join('\n'))).toEqual([]);
  });
});
