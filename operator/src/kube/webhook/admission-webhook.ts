import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '@ccproxy/core';
import type { Kind } from '../../kinds.ts';
import { statusOf, type KubeClient, type KubeObject } from '../kube-client.ts';
import { Reflector, type ReflectorOptions } from '../reflector.ts';
import type { LiveUser } from '../user-binding.ts';
import { answerReview } from './mutate.ts';
import { ensureServingSecret, ForeignSecretError, type ServingCert } from './serving-cert.ts';

export interface AdmissionWebhookOptions {
  client: KubeClient;
  logger: Logger;
  port: number;
  host: string;
  /** The operator's own namespace: its TLS Secret is there, and the Service's DNS names name it. */
  namespace: string;
  /** The Service in front of the webhook: the certificate is for `<service>.<namespace>.svc`. */
  serviceName: string;
  secretName: string;
  /** More names for the certificate (a url clientConfig's host, as tests use: 127.0.0.1). */
  extraNames?: readonly string[];
  /** The MutatingWebhookConfiguration whose caBundle this sets. */
  configurationName: string;
  /** How often the caBundle is checked again (a re-applied configuration may have lost it); 5 min. */
  recheckMs?: number;
  reflector?: Pick<ReflectorOptions, 'relistMs' | 'silenceMs' | 'backoff'>;
  backoff?: { baseMs: number; maxMs: number };
}

/**
 * The mutating admission webhook every replica serves (the Service balances to standbys too): it
 * writes the finalizer, and an AccessKey's owner reference to its ProxyUser, into the CREATE
 * itself, so the leader's reconcile has no metadata patch left to send (its #ensureMetadata stays
 * as the fallback: a dead webhook, failurePolicy Ignore, a user not yet seen). Each replica keeps
 * one metadata-only list+watch of ProxyUsers for the uids; it never blocks on it. The setup —
 * TLS Secret, HTTPS listener, caBundle — retries in the background until it is done, except for a
 * foreign Secret in the TLS Secret's place, which keeps the webhook off for good.
 */
export class AdmissionWebhook {
  readonly #o: AdmissionWebhookOptions;
  readonly #users: Reflector;
  #server: FastifyInstance | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  /** Why the webhook is off for good (a foreign TLS Secret); undefined while it is on or starting. */
  #disabled: string | undefined;

  constructor(options: AdmissionWebhookOptions) {
    this.#o = options;
    const { client } = options;
    this.#users = new Reflector({
      kind: 'ProxyUser',
      // PartialObjectMetadata: a uid per user is all the webhook needs.
      client: {
        list: (kind) => client.list(kind, true),
        watch: (kind, resourceVersion, onEvent, onDone) => client.watch(kind, resourceVersion, onEvent, onDone, true),
      },
      logger: options.logger,
      ...options.reflector,
      keep: liveUserOnly,
      onChange: () => undefined,
    });
  }

  /** Whether /mutate is being served. */
  get serving(): boolean {
    return this.#server !== undefined;
  }

  get disabled(): string | undefined {
    return this.#disabled;
  }

  start(): void {
    this.#users.start();
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await this.#users.stop();
    await this.#server?.close();
    this.#server = undefined;
  }

  #ownerOf = (kind: Kind, namespace: string, name: string): LiveUser | undefined => {
    if (kind !== 'ProxyUser') return undefined;
    const user = this.#users.get(`${namespace}/${name}`);
    return user === undefined
      ? undefined
      : { uid: user.metadata.uid, terminating: user.metadata.deletionTimestamp !== undefined };
  };

  async #run(): Promise<void> {
    const { logger } = this.#o;
    let cert: ServingCert | undefined;
    for (let failures = 0; !this.#stopped && this.#server === undefined;) {
      try {
        cert ??= await ensureServingSecret(this.#o.client, this.#o.namespace, this.#o.secretName, this.dnsNames());
        if (this.#stopped) return;
        this.#server = await this.#listen(cert);
        logger.info(
          { port: this.#o.port, configuration: this.#o.configurationName },
          'admission webhook serving POST /mutate (finalizers and owner references written at create)',
        );
      } catch (error) {
        if (error instanceof ForeignSecretError) {
          this.#disabled = error.message;
          logger.error({ err: error }, 'admission webhook off; the reconcile patches the metadata instead');
          return;
        }
        failures += 1;
        const delay = this.#delay(failures);
        logger.warn({ err: error, retryInMs: delay }, 'admission webhook setup failed; retrying');
        await this.#sleep(delay);
      }
    }
    // The caBundle only once something answers at the other end; then checked again now and then.
    for (let failures = 0; !this.#stopped && cert !== undefined;) {
      try {
        await this.#ensureCaBundle(cert.caPem);
        failures = 0;
        await this.#sleep(this.#o.recheckMs ?? 300_000);
      } catch (error) {
        failures += 1;
        const delay = this.#delay(failures);
        logger.warn(
          { err: error, configuration: this.#o.configurationName, retryInMs: delay },
          'cannot set the admission webhook caBundle; retrying (until then the API server skips the webhook)',
        );
        await this.#sleep(delay);
      }
    }
  }

  /** `<service>.<namespace>.svc` and its `.cluster.local` form: what the API server dials. */
  dnsNames(): string[] {
    const { serviceName, namespace } = this.#o;
    return [
      `${serviceName}.${namespace}.svc`,
      `${serviceName}.${namespace}.svc.cluster.local`,
      ...(this.#o.extraNames ?? []),
    ];
  }

  async #ensureCaBundle(caPem: string): Promise<void> {
    const caBundle = Buffer.from(caPem).toString('base64');
    const configuration = await this.#o.client.readWebhookConfiguration(this.#o.configurationName);
    if (configuration === undefined)
      throw new Error(`MutatingWebhookConfiguration ${this.#o.configurationName} not found`);
    // Get, and patch only when different: N replicas restarting send no writes.
    if ((configuration.webhooks ?? []).every((webhook) => webhook.clientConfig?.caBundle === caBundle)) return;
    try {
      await this.#o.client.setWebhookCaBundle(configuration, caBundle);
      this.#o.logger.info({ configuration: this.#o.configurationName }, 'admission webhook caBundle set');
    } catch (error) {
      // 422: the resourceVersion test failed (another replica patched first); read it again.
      if (statusOf(error) !== 422) throw error;
    }
  }

  async #listen(cert: ServingCert): Promise<FastifyInstance> {
    const app = Fastify({
      https: { key: cert.keyPem, cert: `${cert.certPem.trimEnd()}\n${cert.caPem.trimEnd()}\n` },
      loggerInstance: this.#o.logger as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      // An AdmissionReview carries the object (etcd's limit is 1.5 MiB) and maybe its old version.
      bodyLimit: 4 * 1024 * 1024,
    }) as unknown as FastifyInstance;
    app.post('/mutate', async (request, reply) => {
      const answer = answerReview(request.body, this.#ownerOf);
      return 'error' in answer ? reply.code(400).send({ error: answer.error }) : answer.review;
    });
    try {
      await app.listen({ port: this.#o.port, host: this.#o.host });
    } catch (error) {
      await app.close();
      throw error;
    }
    return app;
  }

  #delay(failures: number): number {
    const { baseMs, maxMs } = this.#o.backoff ?? { baseMs: 500, maxMs: 30_000 };
    return Math.round(Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 20)) * (0.5 + Math.random()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) return resolve();
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** What the webhook keeps of a ProxyUser: its identity and whether it is going. */
function liveUserOnly(object: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion, deletionTimestamp } = object.metadata;
  return {
    kind: 'ProxyUser',
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion,
      ...(deletionTimestamp === undefined ? {} : { deletionTimestamp }),
    },
  };
}
