import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The admin web UI, built into admin/dist/ui, which the admin process serves at `/`.
 * No React plugin: Vite's own transform compiles TSX with the automatic JSX runtime, and a
 * production build needs no fast refresh.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      // MUI marks its modules 'use client' for React Server Components; meaningless in a SPA bundle.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
