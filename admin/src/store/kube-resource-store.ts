import type { KubeConfig } from '@kubernetes/client-node';
import { request, type Dispatcher } from 'undici';
import { ownerUidAnnotation } from '@ccproxy/operator';
import { connectionFromKubeConfig, wholeBody, type KubeConnection } from '@ccproxy/operator/kube';
import {
  adminManager,
  adminSecretMetadata,
  freshRefusal,
  managedByLabel,
  referrersOf,
  secretRefusal,
  type SecretFor,
  type SecretMetadata,
} from './ownership.ts';
import {
  apiVersion,
  checkValid,
  StoreError,
  type Condition,
  type Kind,
  type ResourceStore,
  type SpecOf,
  type StoredResource,
} from './resource-store.ts';

const plurals: Record<Kind, string> = {
  ProxyUser: 'proxyusers',
  AccessKey: 'accesskeys',
  BedrockKey: 'bedrockkeys',
  TeamBudget: 'teambudgets',
};
const fieldManager = 'ccproxy-admin';

interface KubeObject<K extends Kind = Kind> {
  kind: K;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion: string;
    generation?: number;
    labels?: Record<string, string>;
  };
  /** The API server validated it against the CRD generated from the operator's schemas, and defaulted it. */
  spec: SpecOf[K];
  status?: { conditions?: Condition[]; [field: string]: unknown };
}

/**
 * The Kubernetes API as the admin's store. Raw JSON on the wire (client-node's typed
 * serializer drops CRD fields it does not know), with the kubeconfig's credentials, over the
 * operator's `KubeConnection`: one keep-alive agent (client-node's `applyToHTTPSOptions` made a
 * new agent, so a new TCP and TLS handshake, for every call). An update
 * names the spec generation the admin read; a stale one is a 409 instead of overwriting what
 * someone else (kubectl, GitOps) changed meanwhile. Custom resources may be edited whoever
 * applied them (RBAC and that version check guard them); Secrets are written only when they
 * are the admin's for the resource (`ownership.ts`), conditionally on the version judged.
 */
export class KubeResourceStore implements ResourceStore {
  readonly mode = 'kubernetes';
  readonly #connection: KubeConnection;
  /** One namespace, or every namespace when undefined. */
  readonly #namespace: string | undefined;

  constructor(connection: KubeConnection | KubeConfig, namespace?: string) {
    this.#connection = 'prepare' in connection ? connection : connectionFromKubeConfig(connection);
    this.#namespace = namespace;
  }

  async list<K extends Kind>(kind: K): Promise<StoredResource<K>[]> {
    const path =
      this.#namespace === undefined
        ? `/apis/${apiVersion}/${plurals[kind]}`
        : `/apis/${apiVersion}/namespaces/${this.#namespace}/${plurals[kind]}`;
    const list = (await this.#request('GET', path)) as { items: KubeObject<K>[] };
    return list.items.map((item) => toStored({ ...item, kind }));
  }

  async get<K extends Kind>(kind: K, namespace: string, name: string): Promise<StoredResource<K> | undefined> {
    try {
      return toStored({ ...((await this.#request('GET', objectPath(kind, namespace, name))) as KubeObject<K>), kind });
    } catch (error) {
      if (error instanceof StoreError && error.reason === 'not_found') return undefined;
      throw error;
    }
  }

  async create<K extends Kind>(kind: K, namespace: string, name: string, spec: SpecOf[K]): Promise<StoredResource<K>> {
    const body = { apiVersion, kind, metadata: { name, namespace, labels: { [managedByLabel]: adminManager } }, spec };
    // The API server refuses the same (CRD schema, admission policy); this also holds where the policy is not installed.
    checkValid(body);
    const created = (await this.#request(
      'POST',
      `/apis/${apiVersion}/namespaces/${namespace}/${plurals[kind]}?fieldManager=${fieldManager}`,
      body,
    )) as KubeObject<K>;
    const stored = toStored({ ...created, kind });
    await this.#bindSecret(stored).catch(() => undefined);
    return stored;
  }

  /**
   * Gives the Secret the admin wrote for a new resource an owner reference to it (uid and all):
   * garbage collection then removes it with the resource, however that is deleted, and a
   * resource re-created under the same name never finds — or adopts — the old key. Best effort:
   * without it the Secret merely outlives its resource, as any hand-made one does.
   */
  async #bindSecret(resource: StoredResource): Promise<void> {
    const spec = resource.spec as { secretName?: string; secretRef?: { name?: string } };
    const secretName = resource.kind === 'AccessKey' ? spec.secretName : spec.secretRef?.name;
    if (secretName === undefined || resource.uid === undefined) return;
    const owner = { kind: resource.kind, name: resource.name };
    const live = await this.#judgeSecret(resource.namespace, secretName, owner);
    if (live === undefined) return;
    const reference = { apiVersion, kind: resource.kind, name: resource.name, uid: resource.uid, controller: true };
    await this.#request(
      'PATCH',
      `${secretPath(resource.namespace, secretName)}?fieldManager=${fieldManager}`,
      // The uid also as an annotation, which `kubectl delete --cascade=orphan` does not strip:
      // an orphaned Secret is still known as the deleted AccessKey's, and never adopted.
      {
        metadata: {
          resourceVersion: live.resourceVersion,
          ownerReferences: [reference],
          annotations: { [ownerUidAnnotation]: resource.uid },
        },
      },
      'application/merge-patch+json',
    );
  }

  async update<K extends Kind>(
    kind: K,
    namespace: string,
    name: string,
    spec: SpecOf[K],
    resourceVersion: string,
  ): Promise<StoredResource<K>> {
    // The version the admin holds is the spec's generation, which only spec edits move (status
    // is a subresource): the operator's status writes must not turn every edit into a 409.
    // The PUT itself carries the live resourceVersion, so a change between GET and PUT is still
    // refused by the API server; then we look again, and retry only if the spec is unchanged.
    for (let attempt = 0; ; attempt += 1) {
      const live = (await this.#request('GET', objectPath(kind, namespace, name))) as KubeObject<K> & {
        metadata: Record<string, unknown>;
      };
      if (versionOf(live) !== resourceVersion)
        throw new StoreError('conflict', `${kind} ${namespace}/${name} was changed by someone else; reload and retry`);
      const body = { apiVersion, kind, metadata: live.metadata, spec };
      checkValid({ apiVersion, kind, metadata: { name, namespace }, spec });
      try {
        const updated = (await this.#request(
          'PUT',
          `${objectPath(kind, namespace, name)}?fieldManager=${fieldManager}`,
          body,
        )) as KubeObject<K>;
        return toStored({ ...updated, kind });
      } catch (error) {
        if (!(error instanceof StoreError && error.reason === 'conflict') || attempt >= 4) throw error;
      }
    }
  }

  async delete(kind: Kind, namespace: string, name: string): Promise<void> {
    await this.#request('DELETE', objectPath(kind, namespace, name));
  }

  async writeSecret(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: SecretFor,
    options: { fresh?: boolean } = {},
  ): Promise<void> {
    const encoded = Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
    );
    // Judge, then write conditionally on what was judged: a Secret created or changed between
    // the two is judged again rather than overwritten.
    for (let attempt = 0; ; attempt += 1) {
      const live = await this.#judgeSecret(namespace, name, owner);
      const refusal =
        options.fresh === true && live !== undefined
          ? freshRefusal(namespace, name, owner, Date.now() - Date.parse(live.creationTimestamp))
          : undefined;
      if (refusal !== undefined) throw new StoreError('conflict', refusal);
      try {
        if (live === undefined) {
          const metadata = { name, namespace, ...adminSecretMetadata(owner) };
          const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data: encoded };
          await this.#request('POST', `/api/v1/namespaces/${namespace}/secrets?fieldManager=${fieldManager}`, body);
        } else {
          // Rotation: replace the data. The operator sees the Secret change and rotates the key.
          await this.#request(
            'PATCH',
            `${secretPath(namespace, name)}?fieldManager=${fieldManager}`,
            { metadata: { resourceVersion: live.resourceVersion }, data: encoded },
            'application/merge-patch+json',
          );
        }
        return;
      } catch (error) {
        if (!(error instanceof StoreError && error.reason === 'conflict') || attempt >= 3) throw error;
      }
    }
  }

  ignored(): readonly string[] {
    return [];
  }

  async deleteSecret(namespace: string, name: string, owner: SecretFor): Promise<void> {
    const live = await this.#judgeSecret(namespace, name, owner).catch((error: unknown) => {
      if (error instanceof StoreError && error.reason === 'conflict') return undefined; // not ours: left alone
      throw error;
    });
    if (live === undefined) return;
    const options = {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      preconditions: { resourceVersion: live.resourceVersion },
    };
    await this.#request('DELETE', secretPath(namespace, name), options).catch((error: unknown) => {
      if (!(error instanceof StoreError && ['not_found', 'conflict'].includes(error.reason))) throw error;
    });
  }

  /**
   * The live Secret's version when it is the admin's to write for `owner`, undefined when there
   * is none; a `StoreError('conflict')` saying what is in the way otherwise.
   */
  async #judgeSecret(
    namespace: string,
    name: string,
    owner: SecretFor,
  ): Promise<{ resourceVersion: string; creationTimestamp: string } | undefined> {
    const live = (await this.#request('GET', secretPath(namespace, name)).catch((error: unknown) => {
      if (error instanceof StoreError && error.reason === 'not_found') return undefined;
      throw error;
    })) as { metadata: SecretMetadata & { resourceVersion: string; creationTimestamp: string } } | undefined;
    const referrers = await referrersOf(this, namespace, name, owner);
    const refusal = secretRefusal(
      { namespace, name, referrers, ...(live === undefined ? {} : { metadata: live.metadata }) },
      owner,
    );
    if (refusal !== undefined) throw new StoreError('conflict', refusal);
    return live === undefined
      ? undefined
      : { resourceVersion: live.metadata.resourceVersion, creationTimestamp: live.metadata.creationTimestamp };
  }

  async #request(
    method: Dispatcher.HttpMethod,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<unknown> {
    // Appended, not resolved: a server URL may carry a path prefix (Rancher, proxies).
    const url = `${this.#connection.server.replace(/\/+$/, '')}${path}`;
    const response = await (async () => {
      const { dispatcher, headers } = await this.#connection.prepare();
      const answer = await request(url, {
        dispatcher,
        method,
        headers: { ...headers, 'content-type': contentType, accept: 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      return { status: answer.statusCode, text: await wholeBody(answer.body) };
    })().catch((error: unknown) => {
      throw new StoreError(
        'unavailable',
        `Kubernetes API unreachable: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    if (response.status < 300) return JSON.parse(response.text) as unknown;
    const message = (JSON.parse(response.text || '{}') as { message?: string }).message ?? `HTTP ${response.status}`;
    if (response.status === 404) throw new StoreError('not_found', message);
    if (response.status === 409) throw new StoreError('conflict', message);
    if (response.status === 422 || response.status === 400) throw new StoreError('invalid', message);
    throw new StoreError('unavailable', `Kubernetes API: ${message}`);
  }
}

const objectPath = (kind: Kind, namespace: string, name: string) =>
  `/apis/${apiVersion}/namespaces/${namespace}/${plurals[kind]}/${name}`;

const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;

const versionOf = (object: KubeObject) => `g${object.metadata.generation ?? 0}`;

function toStored<K extends Kind>(object: KubeObject<K>): StoredResource<K> {
  const { conditions = [], ...fields } = object.status ?? {};
  return {
    kind: object.kind,
    namespace: object.metadata.namespace,
    name: object.metadata.name,
    resourceVersion: versionOf(object),
    ...(object.metadata.uid === undefined ? {} : { uid: object.metadata.uid }),
    spec: object.spec,
    ...(object.metadata.labels === undefined ? {} : { labels: object.metadata.labels }),
    status: { conditions, fields },
  };
}
