import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from '@ccproxy/core';
import { ClientGone } from './client-gone.ts';
import type { RequestBody } from './request-body.ts';

/**
 * One `/ak/` request on its way through the pipeline: Node's own request and response, its id,
 * its clock, its body and its log. The pipeline works on these directly rather than through
 * fastify's request and reply (see `key-request-handler.ts` for why).
 */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly id = randomUUID();
  readonly body: RequestBody | undefined;
  readonly #startedAt = performance.now();
  readonly #logger: Logger;
  #log: Logger | undefined;
  #bindings: Record<string, unknown> = {};
  /** The upstream last called (for the request log of a request that fails): set by `serve`. */
  upstream: 'plan' | 'bedrock' | undefined;
  /** Whether that call was a failover to Bedrock. */
  failover = false;
  #gone: ClientGone | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, body: RequestBody | undefined, logger: Logger) {
    this.req = req;
    this.res = res;
    this.body = body;
    this.#logger = logger;
  }

  /**
   * Raised once when the client goes away before its answer ended: for the whole exchange, not
   * one upstream call, so a failover after the client left sees it too (it calls nobody's
   * Bedrock, and a relay to a closed response ends at once). Made on first use, by `forward`.
   */
  get gone(): ClientGone {
    if (this.#gone === undefined) {
      const gone = new ClientGone();
      const { res } = this;
      if (res.destroyed && !res.writableFinished) gone.abort();
      else
        res.once('close', () => {
          if (!res.writableFinished) gone.abort();
        });
      this.#gone = gone;
    }
    return this.#gone;
  }

  /** ms since the request arrived. */
  get elapsedMs(): number {
    return performance.now() - this.#startedAt;
  }

  /**
   * This request's logger (its lines carry `requestId` and what `bind` added). Made on first
   * use: at `warn`, a request that goes well never pays for a child logger.
   */
  get log(): Logger {
    this.#log ??= this.#logger.child({ requestId: this.id, ...this.#bindings });
    return this.#log;
  }

  /** Adds fields to every later line of this request. */
  bind(bindings: Record<string, unknown>): void {
    if (this.#log === undefined) this.#bindings = { ...this.#bindings, ...bindings };
    else this.#log.setBindings(bindings);
  }

  /**
   * A whole answer in one write. Its length is the body's, whatever `headers` say; `request-id`
   * is ours unless `headers` carry the upstream's.
   */
  send(status: number, headers: OutgoingHttpHeaders, body: Buffer | string): void {
    this.res.writeHead(status, {
      'request-id': this.id,
      ...headers,
      'content-length': Buffer.byteLength(body),
      'x-ccproxy-request-id': this.id,
    });
    this.res.end(body);
  }

  sendJson(status: number, value: unknown): void {
    this.send(status, { 'content-type': 'application/json' }, JSON.stringify(value));
  }
}
