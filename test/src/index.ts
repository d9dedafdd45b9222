export { startCcproxy, freePort, type CcproxyProcess } from './ccproxy-process.ts';
export { startThrowawayPostgres, createTestDatabase, type ThrowawayPostgres } from './throwaway-postgres.ts';
