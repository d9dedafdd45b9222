import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '@ccproxy/core';
import type { Registry } from 'prom-client';

export interface OperatorAppDeps {
  logger: Logger;
  registry: Registry;
  /** Why this replica is not ready (API server unreachable, caches not synced, KMS unavailable); empty when ready. */
  notReady: () => string[];
}

/** The operator's own HTTP surface: `/healthz`, `/readyz`, `/metrics`. */
export async function buildOperatorApp(deps: OperatorAppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reasons = deps.notReady();
    return reasons.length === 0 ? { status: 'ready' } : reply.code(503).send({ status: 'not ready', reasons });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(deps.registry.contentType).send(await deps.registry.metrics()),
  );
  return app;
}
