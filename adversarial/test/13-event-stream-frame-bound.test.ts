import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  accessKey,
  bedrockKey,
  createTestDatabase,
  documents,
  proxyUser,
  secret,
  startCcproxy,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { encodeEventFrame, maxFrameBytes } from '../../proxy/src/adapters/bedrock/event-stream-frames.ts';

const key = 'ak_frame_bound_key_0123456789abcdefghijkl';
const bedrockApiKey = 'bedrock-key-for-frame-bound-test';
const manifests = documents(
  proxyUser('team-f', 'gil'),
  accessKey('team-f', 'gil-key', {
    user: 'gil',
    routing: 'BedrockOnly',
    // Its hostile upstream speaks ConverseStream; the frame bound is the shared frame splitter's.
    bedrockApi: 'Converse',
    bedrockModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
  }),
  secret('team-f', 'gil-key', { accessKey: key }),
  bedrockKey('team-f', 'gil-bedrock', { accessKey: 'gil-key', secretName: 'team-f-bedrock' }),
  secret('team-f', 'team-f-bedrock', { apiKey: bedrockApiKey }),
);

/** A frame prelude that claims `length` bytes, with a correct prelude CRC (so only the bound stops it). */
function hostilePrelude(length: number): Buffer {
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(length, 0);
  prelude.writeUInt32BE(0, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  return prelude;
}

const junkMiB = 96;

/**
 * A hostile "Bedrock" on loopback: ConverseStream answers 200 with optional good frames, then a
 * frame claiming 2 GiB, then junk as fast as the proxy takes it (1 MiB writes, up to 96 MiB),
 * counting what the proxy accepted before hanging up.
 */
async function startHostileBedrock(): Promise<{ url: string; sentMiB: number[]; server: Server; lead: Buffer[] }> {
  const sentMiB: number[] = [];
  const lead: Buffer[] = [];
  const junk = Buffer.alloc(1024 * 1024, 0x41);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      for (const frame of lead) res.write(frame);
      res.write(hostilePrelude(2 ** 31));
      let sent = 0;
      const pump = () => {
        while (sent < junkMiB && !res.destroyed) {
          sent += 1;
          if (!res.write(junk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => sentMiB.push(sent));
      pump();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sentMiB, server, lead };
}

/** Item 13: an event-stream frame claiming 2 GiB is refused from its prelude, not buffered. */
describe('item 13: Bedrock event-stream frame length is bounded (real ccproxy process, hostile Bedrock)', () => {
  let dir: string;
  let bedrock: Awaited<ReturnType<typeof startHostileBedrock>>;
  let proxy: CcproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-frames-'));
    await writeFile(join(dir, 'gil.yaml'), manifests);
    bedrock = await startHostileBedrock();
    proxy = await startCcproxy(['local', '--manifests', dir], {
      DATABASE_URL: await createTestDatabase(inject('postgresUrl')),
      CCPROXY_KEY_HASHER_SECRET: 'frame-bound-test-hasher-secret-0123456789',
      CCPROXY_DATA_DIR: join(dir, '.data'),
      ANTHROPIC_UPSTREAM_URL: 'http://127.0.0.1:9',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    bedrock?.server.closeAllConnections();
    bedrock?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const rssMiB = async () =>
    Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${proxy.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

  /** Sends a streaming request while sampling the proxy's RSS; returns the answer and the peak growth. */
  const streamWhileSampling = async () => {
    const before = await rssMiB();
    let peak = before;
    const sampler = setInterval(() => void rssMiB().then((value) => (peak = Math.max(peak, value))), 10);
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-client' },
      body: JSON.stringify({
        model: 'claude-sonnet-4-5',
        max_tokens: 5,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const text = await response.text();
    await new Promise((resolve) => setTimeout(resolve, 200));
    clearInterval(sampler);
    peak = Math.max(peak, await rssMiB());
    return { response, text, before, growth: peak - before };
  };

  it('the bound is the event-stream format maximum (16 MiB payload + 128 KiB headers + prelude and CRC)', () => {
    expect(maxFrameBytes).toBe(12 + 128 * 1024 + 16 * 1024 * 1024 + 4);
  });

  it('as the first frame: 502 Anthropic JSON, upstream cut off, RSS barely moves, logged as broken', async () => {
    bedrock.lead.length = 0;
    const { response, text, before, growth } = await streamWhileSampling();
    console.log(`item 13 (first frame): proxy RSS ${before.toFixed(1)} MiB, peak growth ${growth.toFixed(1)} MiB`);
    expect(response.status, text).toBe(502);
    expect(JSON.parse(text)).toEqual({
      type: 'error',
      error: { type: 'api_error', message: 'Bedrock sent a malformed event stream.' },
      request_id: expect.any(String),
    });
    expect(growth).toBeLessThan(24);
    expect(bedrock.sentMiB.at(-1)).toBeLessThan(junkMiB);
    const line = proxy.output.find((l) => l.includes('"status":502') && l.includes('PRX_UPSTREAM_BROKEN'));
    expect(line, proxy.output.slice(-5).join('\n')).toBeDefined();
  });

  it('after events were relayed: the stream ends with event: error, metered as a failed stream', async () => {
    bedrock.lead.splice(
      0,
      bedrock.lead.length,
      Buffer.from(encodeEventFrame('messageStart', { role: 'assistant' })),
      Buffer.from(encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'partial' } })),
    );
    const { response, text, before, growth } = await streamWhileSampling();
    console.log(`item 13 (mid-stream): proxy RSS ${before.toFixed(1)} MiB, peak growth ${growth.toFixed(1)} MiB`);
    expect(response.status, text).toBe(200);
    expect(text).toContain('event: message_start');
    expect(text).toContain('partial');

    expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"[^\n]*\n\n$/);
    expect(text).not.toContain('message_stop');
    expect(growth).toBeLessThan(24);
    expect(bedrock.sentMiB.at(-1)).toBeLessThan(junkMiB);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).toMatch(/ccproxy_stream_errors_total\{[^}]*upstream="bedrock"[^}]*\} 1/);
    expect(
      proxy.output.some((l) => l.includes('"outcome":"upstream_failed"') && l.includes('"upstream":"bedrock"')),
    ).toBe(true);
  });
});
