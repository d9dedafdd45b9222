export { buildAdminApp, defaultUiDir, type AdminConfig, type AdminDeps } from './app.ts';
export {
  hashPassword,
  verifyPassword,
  generatePassword,
  isPasswordHash,
  needsUpgrade,
  describeHash,
  passwordCredentialId,
} from './password.ts';
export { oidcOptionsFrom } from './oidc-config.ts';
export type { OidcOptions } from './oidc.ts';
export { parseRoleRules, grantsFor, selfServiceFor, type RoleRule } from './access/roles.ts';
export {
  ManifestFolderStore,
  type ManifestFolderStoreOptions,
  type LocalStatus,
} from './store/manifest-folder-store.ts';
export { KubeResourceStore } from './store/kube-resource-store.ts';
export { StoreError, type ResourceStore, type StoredResource, type Kind } from './store/resource-store.ts';
