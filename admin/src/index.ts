export { buildAdminApp, type AdminDeps } from './app.ts';
