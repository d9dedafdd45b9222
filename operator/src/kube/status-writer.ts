import type { Logger } from '@ccproxy/core';
import type { Kind } from '../kinds.ts';
import { isWaitingReason, type ResourceStatus } from '../reconcile/conditions.ts';
import { EventRecorder } from './event-recorder.ts';
import type { KubeClient, KubeObject } from './kube-client.ts';
import { readyOf, statusChanged, toKubeStatus, type KubeStatus } from './kube-status.ts';

/**
 * Status subresource writes and the Events that go with them. A write happens only when the
 * status changed; writes of one object are serialized (a slow reconcile's first-sight status and
 * its outcome never land out of order); the patched object goes back into the cache (`inject`),
 * so the watch event of the write wakes nothing and nothing is re-read.
 */
export class StatusWriter {
  readonly #client: Pick<KubeClient, 'patchStatus' | 'createEvent'>;
  readonly #events: EventRecorder;
  readonly #inject: (kind: Kind, object: KubeObject, basedOn: string) => void;
  readonly #pending = new Map<string, Promise<void>>();

  constructor(
    client: Pick<KubeClient, 'patchStatus' | 'createEvent'>,
    logger: Logger,
    inject: (kind: Kind, object: KubeObject, basedOn: string) => void,
    events: EventRecorder = new EventRecorder(client, logger),
  ) {
    this.#client = client;
    this.#events = events;
    this.#inject = inject;
  }

  write(kind: Kind, object: KubeObject, computed: ResourceStatus, extra: Record<string, unknown> = {}): Promise<void> {
    const key = `${kind}/${object.metadata.namespace}/${object.metadata.name}`;
    const previous = this.#pending.get(key) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => this.#writeNow(kind, object, computed, extra))
      .finally(() => {
        if (this.#pending.get(key) === next) this.#pending.delete(key);
      });
    this.#pending.set(key, next);
    return next;
  }

  async #writeNow(kind: Kind, object: KubeObject, computed: ResourceStatus, extra: Record<string, unknown>) {
    const previous = object.status;
    const next = toKubeStatus(previous, computed, object.metadata.generation ?? 0, new Date(), extra);
    if (!statusChanged(previous, next)) return;
    // A merge patch keeps fields it does not name: clear the ones that no longer apply.
    const cleared = Object.fromEntries(
      Object.keys(previous ?? {})
        .filter((field) => !(field in next))
        .map((field) => [field, null]),
    );
    const patched = await this.#client.patchStatus(kind, object.metadata.namespace, object.metadata.name, {
      ...cleared,
      ...next,
    });
    const basedOn = object.metadata.resourceVersion;
    object.status = next;
    if (patched?.metadata !== undefined) {
      const { managedFields: _dropped, ...metadata } = patched.metadata as KubeObject['metadata'] & {
        managedFields?: unknown;
      };
      this.#inject(kind, { ...patched, metadata }, basedOn);
      object.metadata.resourceVersion = metadata.resourceVersion;
    }
    // The Event is a note beside the status, not part of the reconcile: nothing waits for it.
    void this.#announce(kind, object, previous, next);
  }

  /** An Event for every change of the Ready condition (reason or status), Warning when something is wrong. */
  async #announce(
    kind: Kind,
    object: KubeObject,
    previous: Record<string, unknown> | undefined,
    next: KubeStatus,
  ): Promise<void> {
    const before = readyOf(previous);
    const after = readyOf(next);
    if (after === undefined || (before?.status === after.status && before.reason === after.reason)) return;
    // Waiting for a reference (applied in the same bundle, say) is not a problem until it stalls.
    const problem = next.conditions.some(
      (c) =>
        (c.type === 'Stalled' && c.status === 'True') ||
        (c.type === 'Reconciling' && c.status === 'True' && c.reason !== 'Reconciling' && !isWaitingReason(c.reason)),
    );
    await this.event(
      kind,
      object,
      problem ? 'Warning' : 'Normal',
      after.reason,
      after.message || `Ready is ${after.status}.`,
    );
  }

  /** Warnings on their object always; Normal Events combined when many alike come at once (see EventRecorder). */
  async event(kind: Kind, object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string) {
    await this.#events.record(kind, object, type, reason, message);
  }

  /** Records the combined Events still held. */
  async stop(): Promise<void> {
    await this.#events.stop();
  }
}
