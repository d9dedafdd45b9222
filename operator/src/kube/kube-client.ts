import type { KubeConfig } from '@kubernetes/client-node';
import { request } from 'undici';
import { group, version } from '../resources.ts';
import { connectionFromKubeConfig, loadKubeConnection, type KubeConnection } from './kube-connection.ts';
import { KubeApiError, readLines, wholeBody } from './kube-wire.ts';

/** What the operator keeps of any object it watches. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    ownerReferences?: OwnerReference[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * The kinds the operator lists and watches. Secrets two ways, neither a cluster-wide list of
 * Secret data: `Secret` is the Secrets the operator generated (label-selected by
 * `app.kubernetes.io/managed-by=ccproxy-operator`, data kept: reading one costs no request), and
 * `SecretMeta` every Secret's metadata only (PartialObjectMetadata: names and versions, to know
 * which exist and to wake what references one when it changes; a brought Secret's data is read
 * when its AccessKey or BedrockKey is reconciled).
 */
export type Watched = 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'TeamBudget' | 'Secret' | 'SecretMeta';
export type CustomKind = Exclude<Watched, 'Secret' | 'SecretMeta'>;
/** The label selector of the Secrets the operator generated. */
export const generatedSecretSelector = 'app.kubernetes.io/managed-by=ccproxy-operator';
const partialMetadata = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const partialMetadataList = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

export const plurals: Readonly<Record<CustomKind, string>> = {
  ProxyUser: 'proxyusers',
  AccessKey: 'accesskeys',
  BedrockKey: 'bedrockkeys',
  TeamBudget: 'teambudgets',
};

export type WatchEvent =
  { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject } | { type: 'BOOKMARK'; resourceVersion: string };

const mergePatch = 'application/merge-patch+json';
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH';
interface SendOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Longest silence in the answer's body (0: none, for watches). */
  bodyTimeoutMs?: number;
}
/** A call the API server does not answer within this fails (a hung server must not hold a reconcile forever). */
const requestTimeoutMs = 30_000;

/** A Secret as the API serves it (`data` base64). */
export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata: Partial<KubeObject['metadata']> & { name: string; namespace: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** An admissionregistration.k8s.io/v1 MutatingWebhookConfiguration, as much as the operator reads of it. */
export interface WebhookConfigurationObject {
  metadata: { name: string; resourceVersion: string };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

/** A coordination.k8s.io/v1 Lease; times are RFC 3339 with microseconds (MicroTime). */
export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/**
 * The operator's one seam to the Kubernetes API: list, watch, status and metadata patches,
 * Secrets, Events, Leases, as raw JSON over one keep-alive undici agent (`KubeConnection`).
 * Raw on purpose: client-node's typed layer would build typed objects for thousands of Secrets
 * the caches trim anyway, cannot read PartialObjectMetadata, and loading it costs 82–90 MB of
 * RSS. `namespace` undefined = all namespaces.
 */
export class KubeClient {
  readonly #connection: KubeConnection;
  readonly #server: string;
  readonly #namespace: string | undefined;

  constructor(connection: KubeConnection | KubeConfig, namespace?: string) {
    this.#connection = 'prepare' in connection ? connection : connectionFromKubeConfig(connection);
    // Paths are appended, not resolved: a server URL may carry a path prefix (Rancher, proxies).
    this.#server = this.#connection.server.replace(/\/+$/, '');
    this.#namespace = namespace;
  }

  /** From `KUBECONFIG` / ~/.kube/config, or the in-cluster service account (see loadKubeConnection). */
  static async fromEnvironment(namespace?: string): Promise<KubeClient> {
    return new KubeClient(await loadKubeConnection(), namespace);
  }

  /** `metadataOnly`: PartialObjectMetadata (always so for `SecretMeta`). */
  async list(kind: Watched, metadataOnly = false): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const query = kind === 'Secret' ? `?labelSelector=${encodeURIComponent(generatedSecretSelector)}` : '';
    const list = (await this.#call('GET', `${this.#collection(kind)}${query}`, {
      accept: kind === 'SecretMeta' || metadataOnly ? partialMetadataList : 'application/json',
    })) as { items: KubeObject[] | null; metadata?: { resourceVersion?: string } };
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /**
   * Watches from `resourceVersion` (with bookmarks). `onDone` is called once, with the error if
   * it failed (a 410 Gone arrives as an error with `statusCode` 410); a refused watch rejects.
   * Returns a stop function.
   */
  async watch(
    kind: Watched,
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    onDone: (error?: unknown) => void,
    metadataOnly = false,
  ): Promise<() => void> {
    const params = new URLSearchParams({
      watch: 'true',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: '300',
    });
    if (kind === 'Secret') params.set('labelSelector', generatedSecretSelector);
    const path = `${this.#collection(kind)}?${params.toString()}`;
    const controller = new AbortController();
    const response = await this.#send('GET', path, {
      accept: kind === 'SecretMeta' || metadataOnly ? partialMetadata : 'application/json',
      signal: controller.signal,
      // The reflector restarts a watch that says nothing (not even a bookmark) for two minutes.
      bodyTimeoutMs: 0,
    });
    if (response.statusCode !== 200)
      throw new KubeApiError(response.statusCode, 'WATCH', path, await response.body.text());
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      controller.abort();
      onDone(error);
    };
    void readLines(response.body, (line) => {
      if (done) return;
      const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
      if (event.type === 'ERROR') {
        // In-stream errors (410 Gone when the resourceVersion is too old) end this watch.
        const code = event.object.code ?? 500;
        finish(new KubeApiError(code, 'WATCH', path, JSON.stringify(event.object)));
      } else if (event.type === 'BOOKMARK')
        onEvent({ type: 'BOOKMARK', resourceVersion: event.object.metadata.resourceVersion });
      else if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')
        onEvent({ type: event.type, object: event.object });
    }).then(
      () => finish(),
      (error: unknown) => finish(done || controller.signal.aborted ? undefined : error),
    );
    return () => finish();
  }

  /** Returns the object as patched (its new resourceVersion). */
  async patchStatus(
    kind: CustomKind,
    namespace: string,
    name: string,
    status: Record<string, unknown>,
  ): Promise<KubeObject> {
    return (await this.#call('PATCH', `${objectPath(kind, namespace, name)}/status`, {
      body: { status },
      contentType: mergePatch,
    })) as KubeObject;
  }

  /** Sets the finalizer list, guarded by resourceVersion so a concurrent edit is not overwritten. */
  async setFinalizers(kind: CustomKind, object: KubeObject, finalizers: string[]): Promise<KubeObject> {
    return this.patchMetadata(kind, object, { finalizers });
  }

  /**
   * Sets finalizers and/or owner references (each list replaced whole, as a merge patch does) and
   * adds annotations, guarded by resourceVersion so a concurrent edit is not overwritten.
   */
  async patchMetadata(
    kind: CustomKind,
    object: KubeObject,
    metadata: { finalizers?: string[]; ownerReferences?: OwnerReference[]; annotations?: Record<string, string> },
  ): Promise<KubeObject> {
    const { namespace, name, resourceVersion } = object.metadata;
    return (await this.#call('PATCH', objectPath(kind, namespace, name), {
      body: { metadata: { ...metadata, resourceVersion } },
      contentType: mergePatch,
    })) as KubeObject;
  }

  async readSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    return (await this.#call('GET', secretPath(namespace, name)).catch(orUndefinedOn404)) as SecretObject | undefined;
  }

  /** Creates a Secret and returns it as created; undefined when one of that name exists already (someone else won). */
  async createSecret(namespace: string, secret: SecretObject): Promise<SecretObject | undefined> {
    try {
      return (await this.#call('POST', `/api/v1/namespaces/${namespace}/secrets`, { body: secret })) as SecretObject;
    } catch (error) {
      if (statusOf(error) === 409) return undefined;
      throw error;
    }
  }

  async createEvent(
    involved: { kind: string; object: KubeObject },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    component: string,
  ): Promise<void> {
    const { namespace, name, uid, resourceVersion } = involved.object.metadata;
    const now = new Date().toISOString();
    await this.#call('POST', `/api/v1/namespaces/${namespace}/events`, {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: {
          apiVersion: `${group}/${version}`,
          kind: involved.kind,
          name,
          namespace,
          uid,
          resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        reportingComponent: component,
        reportingInstance: component,
      },
    });
  }

  async readWebhookConfiguration(name: string): Promise<WebhookConfigurationObject | undefined> {
    return (await this.#call('GET', webhookConfigurationPath(name)).catch(orUndefinedOn404)) as
      WebhookConfigurationObject | undefined;
  }

  /**
   * Sets every webhook's `clientConfig.caBundle` of the MutatingWebhookConfiguration, as a JSON
   * patch that first tests the resourceVersion read (a concurrent edit fails it, with 422).
   */
  async setWebhookCaBundle(configuration: WebhookConfigurationObject, caBundle: string): Promise<void> {
    const patch = [
      { op: 'test', path: '/metadata/resourceVersion', value: configuration.metadata.resourceVersion },
      ...(configuration.webhooks ?? []).map((_, i) => ({
        op: 'add',
        path: `/webhooks/${i}/clientConfig/caBundle`,
        value: caBundle,
      })),
    ];
    await this.#call('PATCH', webhookConfigurationPath(configuration.metadata.name), {
      body: patch,
      contentType: 'application/json-patch+json',
    });
  }

  async readLease(namespace: string, name: string): Promise<LeaseObject | undefined> {
    return (await this.#call('GET', leasePath(namespace, name)).catch(orUndefinedOn404)) as LeaseObject | undefined;
  }

  async createLease(namespace: string, lease: LeaseObject): Promise<LeaseObject> {
    return (await this.#call('POST', leasePath(namespace, ''), { body: lease })) as LeaseObject;
  }

  /** Replaces the Lease; the body's resourceVersion makes a concurrent change fail with 409. */
  async replaceLease(namespace: string, lease: LeaseObject): Promise<LeaseObject> {
    return (await this.#call('PUT', leasePath(namespace, lease.metadata.name), { body: lease })) as LeaseObject;
  }

  #collection(kind: Watched): string {
    const ns = this.#namespace;
    if (kind === 'Secret' || kind === 'SecretMeta')
      return ns === undefined ? '/api/v1/secrets' : `/api/v1/namespaces/${ns}/secrets`;
    return ns === undefined
      ? `/apis/${group}/${version}/${plurals[kind]}`
      : `/apis/${group}/${version}/namespaces/${ns}/${plurals[kind]}`;
  }

  /** The request, with this connection's credentials and agent; its answer unread. */
  async #send(method: Method, path: string, options: SendOptions) {
    const { dispatcher, headers } = await this.#connection.prepare();
    return request(`${this.#server}${path}`, {
      method,
      dispatcher,
      headers: {
        ...headers,
        accept: options.accept ?? 'application/json',
        ...(options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      headersTimeout: requestTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs ?? requestTimeoutMs,
    });
  }

  /** One call with this connection's credentials: the parsed JSON answer, or a KubeApiError. */
  async #call(method: Method, path: string, options: SendOptions = {}): Promise<unknown> {
    const response = await this.#send(method, path, options);
    const text = await wholeBody(response.body);
    if (response.statusCode >= 300) throw new KubeApiError(response.statusCode, method, path, text);
    return JSON.parse(text) as unknown;
  }
}

const objectPath = (kind: CustomKind, namespace: string, name: string) =>
  `/apis/${group}/${version}/namespaces/${namespace}/${plurals[kind]}/${name}`;
const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;
const webhookConfigurationPath = (name: string) =>
  `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`;
const leasePath = (namespace: string, name: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name === '' ? '' : `/${name}`}`;

function orUndefinedOn404(error: unknown): undefined {
  if (statusOf(error) === 404) return undefined;
  throw error;
}

/** HTTP status of an API error (ours, or client-node's ApiException `code`), if it has one. */
export function statusOf(error: unknown): number | undefined {
  const { statusCode, code } = (error ?? {}) as { statusCode?: unknown; code?: unknown };
  return typeof statusCode === 'number' ? statusCode : typeof code === 'number' ? code : undefined;
}
