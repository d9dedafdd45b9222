export { startCcproxy, freePort, type CcproxyProcess } from './ccproxy-process.ts';
export { startThrowawayPostgres, createTestDatabase, type ThrowawayPostgres } from './throwaway-postgres.ts';
export { startAnthropicServer, type AnthropicTestServer, type RecordedRequest, type Reply, type Responder, type MessagesRequest } from './anthropic-test-server.ts';
export { renderSse, anthropicError, type Message, type ContentBlock, type Usage } from './anthropic-wire.ts';
export { startBedrockServer, converseStreamFrames, type BedrockTestServer, type BedrockReply, type BedrockResponder, type BedrockRecordedRequest, type ConverseBlock } from './bedrock-test-server.ts';
export { SmithyValidator } from './smithy-validator.ts';
export { converseServiceRules } from './bedrock-rules.ts';
export { proxyUser, accessKey, secret, bedrockKey, documents } from './manifests.ts';
