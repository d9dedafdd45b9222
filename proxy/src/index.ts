export { buildApp, type ProxyDeps } from './app.ts';
export { loadProxyConfig, proxyConfigFields, type ProxyConfig } from './config.ts';
export { KeyResolver, type KeyResolverOptions } from './pipeline/key-resolver.ts';
export { BedrockCredentials } from './pipeline/bedrock-credentials.ts';
export { CircuitBreakers, stateOf } from './pipeline/circuit-breakers.ts';
export { decideRoute, type BreakerState, type RouteDecision } from './pipeline/route.ts';
export { shouldFailOver } from './pipeline/failover.ts';
