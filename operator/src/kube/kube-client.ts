import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Lease,
  type V1Secret,
} from '@kubernetes/client-node';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { group, version } from '../resources.ts';
import { shareDispatcher } from './shared-dispatcher.ts';

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

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * The operator's one seam to the Kubernetes API (client-node underneath): list, watch, status
 * and finalizer patches, Secrets, Events, Leases. `namespace` undefined = all namespaces.
 */
export class KubeClient {
  readonly #config: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #namespace: string | undefined;
  /** The same credentials, asking for PartialObjectMetadata (metadata-only watches). */
  readonly #metadataConfig: KubeConfig;

  constructor(config: KubeConfig, namespace?: string) {
    // One keep-alive agent for every request, not a new TLS connection per call (see shareDispatcher).
    this.#config = shareDispatcher(config);
    this.#metadataConfig = Object.assign(Object.create(config) as KubeConfig, {
      applySecurityAuthentication: async (context: Parameters<KubeConfig['applySecurityAuthentication']>[0]) => {
        await config.applySecurityAuthentication(context);
        context.setHeaderParam('Accept', partialMetadata);
      },
    });
    this.#custom = config.makeApiClient(CustomObjectsApi);
    this.#core = config.makeApiClient(CoreV1Api);
    this.#coordination = config.makeApiClient(CoordinationV1Api);
    this.#namespace = namespace;
  }

  /** From `KUBECONFIG` / ~/.kube/config, or the in-cluster service account. */
  static fromEnvironment(namespace?: string): KubeClient {
    return new KubeClient(loadKubeConfig(), namespace);
  }

  async list(kind: Watched): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const ns = this.#namespace;
    if (kind === 'Secret' || kind === 'SecretMeta') {
      // Raw JSON: client-node's typed reader neither takes PartialObjectMetadataList nor needs to
      // build typed objects (Dates and all) for thousands of Secrets the cache trims anyway.
      const path = ns === undefined ? '/api/v1/secrets' : `/api/v1/namespaces/${ns}/secrets`;
      const query = kind === 'Secret' ? `?labelSelector=${encodeURIComponent(generatedSecretSelector)}` : '';
      const accept = kind === 'SecretMeta' ? partialMetadataList : undefined;
      const list = (await this.#getJson(`${path}${query}`, accept)) as {
        items: KubeObject[] | null;
        metadata?: { resourceVersion?: string };
      };
      return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
    }
    const list = (
      ns === undefined
        ? await this.#custom.listClusterCustomObject({ group, version, plural: plurals[kind] })
        : await this.#custom.listNamespacedCustomObject({ group, version, namespace: ns, plural: plurals[kind] })
    ) as { items: KubeObject[]; metadata?: { resourceVersion?: string } };
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /** A GET with this client's credentials; the parsed JSON body, or an error carrying `statusCode`. */
  async #getJson(path: string, accept = 'application/json'): Promise<unknown> {
    const options: RequestOptions = { method: 'GET', headers: { accept } };
    await this.#config.applyToHTTPSOptions(options);
    const url = new URL(path, this.#config.getCurrentCluster()?.server);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = (url.protocol === 'http:' ? httpRequest : httpsRequest)(url, options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });
    if (status >= 300)
      throw Object.assign(new Error(`GET ${path}: ${status} ${body.slice(0, 200)}`), { statusCode: status });
    return JSON.parse(body) as unknown;
  }

  /**
   * Watches from `resourceVersion` (with bookmarks). `onDone` is called once, with the error if
   * it failed (a 410 Gone arrives as an error with `statusCode` 410). Returns a stop function.
   */
  async watch(
    kind: Watched,
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    onDone: (error?: unknown) => void,
  ): Promise<() => void> {
    const ns = this.#namespace;
    const path =
      kind === 'Secret' || kind === 'SecretMeta'
        ? ns === undefined
          ? '/api/v1/secrets'
          : `/api/v1/namespaces/${ns}/secrets`
        : ns === undefined
          ? `/apis/${group}/${version}/${plurals[kind]}`
          : `/apis/${group}/${version}/namespaces/${ns}/${plurals[kind]}`;
    let gone = false;
    const box: { controller?: AbortController } = {};
    let endSoon = false;
    const end = () => (box.controller === undefined ? (endSoon = true) : box.controller.abort());
    const controller = await new Watch(kind === 'SecretMeta' ? this.#metadataConfig : this.#config).watch(
      path,
      {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 300,
        ...(kind === 'Secret' ? { labelSelector: generatedSecretSelector } : {}),
      },
      (type: string, object: KubeObject & { code?: number }) => {
        if (type === 'ERROR') {
          // In-stream errors (410 Gone when the resourceVersion is too old) end this watch.
          gone = object.code === 410;
          end();
          return;
        }
        if (type === 'BOOKMARK') onEvent({ type, resourceVersion: object.metadata.resourceVersion });
        else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') onEvent({ type, object });
      },
      (error: unknown) =>
        onDone(gone ? Object.assign(new Error('watch expired (410 Gone)'), { statusCode: 410 }) : (error ?? undefined)),
    );
    box.controller = controller;
    if (endSoon) controller.abort();
    return () => controller.abort();
  }

  /** Returns the object as patched (its new resourceVersion). */
  async patchStatus(
    kind: CustomKind,
    namespace: string,
    name: string,
    status: Record<string, unknown>,
  ): Promise<KubeObject> {
    return (await this.#custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace, plural: plurals[kind], name, body: { status } },
      mergePatch,
    )) as KubeObject;
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
    return (await this.#custom.patchNamespacedCustomObject(
      { group, version, namespace, plural: plurals[kind], name, body: { metadata: { ...metadata, resourceVersion } } },
      mergePatch,
    )) as KubeObject;
  }

  async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return this.#core.readNamespacedSecret({ namespace, name }).catch(orUndefinedOn404);
  }

  /** Creates a Secret and returns it as created; undefined when one of that name exists already (someone else won). */
  async createSecret(namespace: string, secret: V1Secret): Promise<V1Secret | undefined> {
    try {
      return await this.#core.createNamespacedSecret({ namespace, body: secret });
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return undefined;
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
    const now = new Date();
    await this.#core.createNamespacedEvent({
      namespace,
      body: {
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

  async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    return this.#coordination.readNamespacedLease({ namespace, name }).catch(orUndefinedOn404);
  }

  async createLease(namespace: string, lease: V1Lease): Promise<V1Lease> {
    return this.#coordination.createNamespacedLease({ namespace, body: lease });
  }

  /** Replaces the Lease; the body's resourceVersion makes a concurrent change fail with 409. */
  async replaceLease(namespace: string, lease: V1Lease): Promise<V1Lease> {
    return this.#coordination.replaceNamespacedLease({ namespace, name: lease.metadata?.name ?? '', body: lease });
  }
}

/** The kubeconfig of this process: `KUBECONFIG` / ~/.kube/config, or the in-cluster service account. */
export function loadKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromDefault();
  return shareDispatcher(config);
}

function orUndefinedOn404(error: unknown): undefined {
  if (error instanceof ApiException && error.code === 404) return undefined;
  throw error;
}

/** HTTP status of a client-node error, if it has one. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}
