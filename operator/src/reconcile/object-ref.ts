import type { ObjectRef } from '@ccproxy/core';

interface HasMetadata {
  kind: string;
  metadata: { name: string; namespace?: string | undefined; uid?: string | undefined };
}

/** Objects from a folder have no namespace or uid of their own; give them stable ones. */
export function refOf(object: HasMetadata): ObjectRef {
  const namespace = object.metadata.namespace ?? 'default';
  return {
    namespace,
    name: object.metadata.name,
    uid: object.metadata.uid ?? `local:${namespace}/${object.kind}/${object.metadata.name}`,
  };
}
