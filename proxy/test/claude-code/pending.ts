/**
 * Cells (`row | column`) that fail on this branch until another branch is merged, with the reason
 * the matrix document prints for them. The matrix leaves them out (never a skipped test); the
 * lead removes an entry once the branch that fixes it is merged, and the cell then runs.
 */
const invokeScript =
  'the scripted model plays tool calls, thinking, citations and cache usage as ConverseStream frames only; its InvokeModel rendering is not written yet (the same requests pass the InvokeModel body rules in the fixture test)';
export const pendingUntilMerge = new Map<string, string>(
  [
    'Bash tool round trip',
    'parallel tool calls',
    'thinking (adaptive), signature replayed',
    'thinking (enabled), signature replayed',
    'images (Read of a PNG)',
    'PDF (Read of a PDF)',
    'citations',
    'structured output (--json-schema)',
    'prompt caching (usage reported)',
    'long context → "prompt is too long" → auto-compact',
  ].map((row) => [`${row} | Bedrock InvokeModel`, invokeScript]),
);

/**
 * Transition steps (by tag) that fail on this branch until the stickiness fix (issue 23 item 5)
 * is merged: a session that failed over once stays pinned to Bedrock while the key is "failing"
 * (the failure window is ignored when the state is read, and the pinned session never tries Plan
 * again, so no success ever resets it). The steps are sequential: the test runs every step up to
 * the first pending one; the lead removes these entries once the fix is merged.
 */
export const pendingTransitions = new Map<string, string>([]);
