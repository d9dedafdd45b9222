import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const outDir = fileURLToPath(new URL('../dist/ui', import.meta.url));

/**
 * Every text asset also as .br and .gz beside it, compressed once at build time at the highest
 * levels; the admin process serves them by Accept-Encoding (@fastify/static preCompressed), so
 * no request spends CPU compressing.
 */
function precompress(): Plugin {
  return {
    name: 'ccproxy-precompress',
    apply: 'build',
    async closeBundle() {
      const files = [
        'index.html',
        ...(await readdir(join(outDir, 'assets'))).map((file) => join('assets', file)),
      ].filter((file) => /\.(js|css|html|svg|json)$/.test(file));
      for (const file of files) {
        const body = await readFile(join(outDir, file));
        await writeFile(join(outDir, `${file}.gz`), gzipSync(body, { level: 9 }));
        await writeFile(
          join(outDir, `${file}.br`),
          brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
      }
    },
  };
}

/**
 * The admin web UI, built into admin/dist/ui, which the admin process serves at `/`.
 * No React plugin: Vite's own transform compiles TSX with the automatic JSX runtime, and a
 * production build needs no fast refresh.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  // Production React and JSX whoever builds: under vitest NODE_ENV is "test", which would bundle
  // React's development build (twice the size, several times slower to first paint).
  oxc: { jsx: { runtime: 'automatic', development: false } },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  plugins: [precompress()],
  build: {
    outDir,
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
