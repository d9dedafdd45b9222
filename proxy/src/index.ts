export { buildApp, type ProxyDeps } from './app.ts';
export { loadProxyConfig, proxyConfigFields, type ProxyConfig } from './config.ts';
export { KeyResolver, type KeyResolverOptions } from './pipeline/key-resolver.ts';
export { BedrockCredentials } from './pipeline/bedrock-credentials.ts';
