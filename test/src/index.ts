export { startCcproxy, freePort, type CcproxyProcess } from './ccproxy-process.ts';
export { startThrowawayPostgres, createTestDatabase, type ThrowawayPostgres } from './throwaway-postgres.ts';
export { startAnthropicServer, type AnthropicTestServer, type RecordedRequest, type Reply, type Responder, type MessagesRequest } from './anthropic-test-server.ts';
export { renderSse, anthropicError, type Message, type ContentBlock, type Usage } from './anthropic-wire.ts';
