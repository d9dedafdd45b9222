import { registerHooks } from 'node:module';

/**
 * Preload (`--import`) for module-graph tests: writes `loaded-package <name>` to stderr the first
 * time a module of each npm package is resolved, so a test can see what a command loads.
 */
const seen = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(resolved.url);
    const name = match?.[1];
    if (name !== undefined && !seen.has(name)) {
      seen.add(name);
      process.stderr.write(`loaded-package ${name}\n`);
    }
    return resolved;
  },
});
