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
import { group, version } from '../resources.ts';

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

/** The kinds the operator lists and watches. */
export type Watched = 'ProxyUser' | 'AccessKey' | 'BedrockKey' | 'Secret';

export const plurals: Readonly<Record<Exclude<Watched, 'Secret'>, string>> = {
  ProxyUser: 'proxyusers',
  AccessKey: 'accesskeys',
  BedrockKey: 'bedrockkeys',
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

  constructor(config: KubeConfig, namespace?: string) {
    this.#config = config;
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
    const list = (
      kind === 'Secret'
        ? ns === undefined
          ? await this.#core.listSecretForAllNamespaces()
          : await this.#core.listNamespacedSecret({ namespace: ns })
        : ns === undefined
          ? await this.#custom.listClusterCustomObject({ group, version, plural: plurals[kind] })
          : await this.#custom.listNamespacedCustomObject({ group, version, namespace: ns, plural: plurals[kind] })
    ) as { items: KubeObject[]; metadata?: { resourceVersion?: string } };
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
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
      kind === 'Secret'
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
    const controller = await new Watch(this.#config).watch(
      path,
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
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

  async patchStatus(
    kind: Exclude<Watched, 'Secret'>,
    namespace: string,
    name: string,
    status: Record<string, unknown>,
  ): Promise<void> {
    await this.#custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace, plural: plurals[kind], name, body: { status } },
      mergePatch,
    );
  }

  /** Sets the finalizer list, guarded by resourceVersion so a concurrent edit is not overwritten. */
  async setFinalizers(kind: Exclude<Watched, 'Secret'>, object: KubeObject, finalizers: string[]): Promise<void> {
    await this.patchMetadata(kind, object, { finalizers });
  }

  /**
   * Sets finalizers and/or owner references (each list replaced whole, as a merge patch does) and
   * adds annotations, guarded by resourceVersion so a concurrent edit is not overwritten.
   */
  async patchMetadata(
    kind: Exclude<Watched, 'Secret'>,
    object: KubeObject,
    metadata: { finalizers?: string[]; ownerReferences?: OwnerReference[]; annotations?: Record<string, string> },
  ): Promise<void> {
    const { namespace, name, resourceVersion } = object.metadata;
    await this.#custom.patchNamespacedCustomObject(
      { group, version, namespace, plural: plurals[kind], name, body: { metadata: { ...metadata, resourceVersion } } },
      mergePatch,
    );
  }

  async readSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return this.#core.readNamespacedSecret({ namespace, name }).catch(orUndefinedOn404);
  }

  /** Creates a Secret; false when one of that name exists already (someone else won). */
  async createSecret(namespace: string, secret: V1Secret): Promise<boolean> {
    try {
      await this.#core.createNamespacedSecret({ namespace, body: secret });
      return true;
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return false;
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
  return config;
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
