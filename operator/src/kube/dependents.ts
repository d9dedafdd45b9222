import { kindSpec, type Kind, type Referenced } from '../kinds.ts';
import type { KubeObject } from './kube-client.ts';

/**
 * Who references what, kept as objects come and go: `Kind/namespace/name` of a referenced object
 * → the queue keys of the resources naming it (from the kinds table's `references`). A change of
 * an object wakes exactly its dependents, and the AccessKeys sharing a Secret are found without
 * scanning every cached object (thousands of keys would make each event cost thousands of steps).
 */
export class DependentsIndex {
  readonly #index = new Map<string, Set<string>>();

  /** Records `object` (of `kind`) in place of `previous`. */
  update(kind: Kind, previous: KubeObject | undefined, object: KubeObject | undefined): void {
    const queueKey = (o: KubeObject) => `${kind}/${o.metadata.namespace}/${o.metadata.name}`;
    if (previous !== undefined)
      for (const target of targetsOf(kind, previous)) {
        const set = this.#index.get(target);
        set?.delete(queueKey(previous));
        if (set?.size === 0) this.#index.delete(target);
      }
    if (object !== undefined)
      for (const target of targetsOf(kind, object)) {
        let set = this.#index.get(target);
        if (set === undefined) this.#index.set(target, (set = new Set()));
        set.add(queueKey(object));
      }
  }

  /** Queue keys of the resources referencing `kind` `namespace/name`. */
  of(kind: Referenced, namespace: string, name: string): readonly string[] {
    return [...(this.#index.get(`${kind}/${namespace}/${name}`) ?? [])];
  }
}

function targetsOf(kind: Kind, object: KubeObject): string[] {
  const references = kindSpec(kind).references((object.spec ?? {}) as never);
  return Object.entries(references)
    .filter(([, name]) => typeof name === 'string' && name !== '')
    .map(([referenced, name]) => `${referenced}/${object.metadata.namespace}/${name as string}`);
}
