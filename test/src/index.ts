export { startCcproxy, freePort, type CcproxyProcess } from './ccproxy-process.ts';
export {
  startThrowawayPostgres,
  createTestDatabase,
  openMigratedDatabase,
  type ThrowawayPostgres,
} from './throwaway-postgres.ts';
export {
  startAnthropicServer,
  type AnthropicTestServer,
  type RecordedRequest,
  type Reply,
  type Responder,
  type MessagesRequest,
} from './anthropic-test-server.ts';
export { renderSse, anthropicError, type Message, type ContentBlock, type Usage } from './anthropic-wire.ts';
export {
  startBedrockServer,
  converseStreamFrames,
  type BedrockTestServer,
  type BedrockReply,
  type BedrockResponder,
  type BedrockRecordedRequest,
  type ConverseBlock,
} from './bedrock-test-server.ts';
export { streamEventsFor, type ScriptedReply } from './bedrock-scripted.ts';
export { SmithyValidator } from './smithy-validator.ts';
export { verifySigV4, type AwsSecret, type SignedRequest, type Verdict } from './sigv4-verifier.ts';
export { converseServiceRules } from './bedrock-rules.ts';
export { invokeModelBodyRules } from './bedrock-invoke-rules.ts';
export { chunkFrame, frame as eventStreamFrame, type InvokeAnthropicReply } from './bedrock-invoke.ts';
export { proxyUser, accessKey, secret, bedrockKey, documents } from './manifests.ts';
export { startMotoServer, MOTO_VERSION, type MotoServer } from './moto-server.ts';
export {
  startThrowawayKubeApiserver,
  ensureKubeApiserverBinary,
  ensureKubectl,
  ensureKubeControllerManager,
  KUBERNETES_VERSION,
  type ThrowawayKubeApiserver,
  type StaticTokenUser,
} from './kube-apiserver.ts';
export { operatorToken, facadeToken } from './suite-setup.ts';
export { ensureHelmBinary, runHelm, HELM_VERSION, type HelmResult } from './helm.ts';
export { ensureKubeScoreBinary, kubeScore, KUBE_SCORE_VERSION } from './kube-score.ts';
export { aptInstall } from './apt-install.ts';
export { ensurePythonVenv, type VenvSpec } from './python-venv.ts';
export {
  checkov,
  ensureCheckovPython,
  unskipped,
  unusedSkips,
  CHECKOV_VERSION,
  type CheckovFinding,
  type CheckovSkip,
} from './checkov.ts';
export { longStep, formatDuration, type ProgressOptions } from './progress.ts';
export { withLock } from './build-lock.ts';
export { mountSmallTmpfs, type SmallTmpfs } from './tmpfs.ts';
export { exists } from './files.ts';
export { writeDocSection } from './doc-sections.ts';
export {
  runClaudeCode,
  claudeCodeEnv,
  claudeCodeBinary,
  claudeCodeVersion,
  type ClaudeRun,
  type ClaudeRunOptions,
  type StreamJsonEvent,
  type ResultEvent,
} from './claude-code.ts';
export {
  scriptedResponders,
  anthropicTurn,
  converseTurn,
  cellOf,
  type ModelScript,
  type ModelTurn,
  type ModelReply,
  type ModelBlock,
  type ModelFailure,
  type Citation,
} from './scripted-model.ts';
export { startCuttableRelay, type CuttableRelay, type RelayMode } from './cuttable-relay.ts';
export { startCountingForwarder, type CountingForwarder } from './counting-forwarder.ts';
export { usageRecord } from './usage-records.ts';
