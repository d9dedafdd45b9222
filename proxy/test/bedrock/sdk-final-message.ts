import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';

/** Serves SSE text so the official SDK's MessageStream can assemble it. */
export async function sdkFinalMessage(sse: string) {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const client = new Anthropic({
      baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      apiKey: 'k',
      maxRetries: 0,
    });
    return await client.messages
      .stream({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
      .finalMessage();
  } finally {
    server.close();
  }
}
