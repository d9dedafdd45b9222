export { buildAdminApp, defaultUiDir, type AdminConfig, type AdminDeps } from './app.ts';
export { hashPassword, verifyPassword, generatePassword, isPasswordHash } from './password.ts';
export {
  ManifestFolderStore,
  type ManifestFolderStoreOptions,
  type LocalStatus,
} from './store/manifest-folder-store.ts';
export { KubeResourceStore } from './store/kube-resource-store.ts';
export { StoreError, type ResourceStore, type StoredResource, type Kind } from './store/resource-store.ts';
