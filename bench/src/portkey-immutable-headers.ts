/**
 * Preloaded into the peer (`node --import`), never into ccproxy. Portkey gateway 1.15.2 on
 * Node ≥ 24 answers every streaming request with HTTP 500: it appends its `x-portkey-*` headers
 * to a fetch Response whose headers are immutable (Portkey-AI/gateway#1550, #1389; the fix,
 * PR #1551, is in no release). Here such a write is dropped instead of thrown, so the peer can
 * be measured at all; it loses only its own two response headers.
 */
for (const method of ['append', 'set', 'delete'] as const) {
  const original = Headers.prototype[method] as (this: Headers, ...args: unknown[]) => void;
  Object.defineProperty(Headers.prototype, method, {
    value: function (this: Headers, ...args: unknown[]) {
      try {
        original.apply(this, args);
      } catch (error) {
        if (!(error instanceof TypeError && error.message === 'immutable')) throw error;
      }
    },
  });
}
