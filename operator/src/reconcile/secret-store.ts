/** The resource a Secret says it was made for (controller owner reference, or ccproxy's owner annotation). */
export interface SecretOwner {
  kind: string;
  name: string;
  /**
   * The owner's uid: from the owner reference, else from ccproxy's `ccproxy.io/owner-uid`
   * annotation (kept when an owner reference is not: local mode, `kubectl delete --cascade=orphan`).
   * Unknown only on Secrets written before ccproxy recorded it.
   */
  uid?: string;
}

export interface StoredSecret {
  /** Values are plain strings (already base64-decoded). */
  data: Record<string, string>;
  owner?: SecretOwner;
}

/** Annotation on Secrets ccproxy writes (operator and admin): `<Kind>/<name>` of the resource they belong to. */
export const ownerAnnotation = 'ccproxy.io/owner';
/** Annotation beside `ccproxy.io/owner`: the uid of that resource, so a re-created one of the same name is told apart. */
export const ownerUidAnnotation = 'ccproxy.io/owner-uid';

/**
 * Where access-key Secrets live: the Kubernetes API, or in local mode the manifests folder
 * (read) plus the data dir (generated).
 */
export interface SecretStore {
  read(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** Creates the Secret holding a generated key; must not overwrite one created meanwhile. */
  writeGenerated(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: { kind: string; name: string; uid: string },
  ): Promise<void>;
}

/** The owner named by the annotation `Kind/name` (and its uid, when recorded), if any. */
export function ownerFromAnnotation(annotations: Record<string, string> | undefined): SecretOwner | undefined {
  const value = annotations?.[ownerAnnotation];
  const slash = value?.indexOf('/') ?? -1;
  if (value === undefined || slash <= 0) return undefined;
  const uid = annotations?.[ownerUidAnnotation];
  return { kind: value.slice(0, slash), name: value.slice(slash + 1), ...(uid === undefined ? {} : { uid }) };
}

/** The annotations recording a Secret's owner (see `ownerFromAnnotation`). */
export function ownerAnnotations(owner: { kind: string; name: string; uid: string }): Record<string, string> {
  return { [ownerAnnotation]: `${owner.kind}/${owner.name}`, [ownerUidAnnotation]: owner.uid };
}
