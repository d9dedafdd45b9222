/**
 * Where access-key Secrets live: the Kubernetes API, or in local mode the manifests folder
 * (read) plus the data dir (generated). Values are plain strings (already base64-decoded).
 */
export interface SecretStore {
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Secret holding a generated key; must not overwrite one created meanwhile. */
  writeGenerated(
    namespace: string,
    name: string,
    data: Record<string, string>,
    owner: { kind: string; name: string; uid: string },
  ): Promise<void>;
}
