/**
 * Cells (`row | column`) that fail on this branch until another branch is merged, with the reason
 * the matrix document prints for them. The matrix leaves them out (never a skipped test); the
 * lead removes an entry once the branch that fixes it is merged, and the cell then runs.
 */
export const pendingUntilMerge = new Map<string, string>([]);

/**
 * Transition steps (by tag) that fail on this branch until the stickiness fix (issue 23 item 5)
 * is merged: a session that failed over once stays pinned to Bedrock while the key is "failing"
 * (the failure window is ignored when the state is read, and the pinned session never tries Plan
 * again, so no success ever resets it). The steps are sequential: the test runs every step up to
 * the first pending one; the lead removes these entries once the fix is merged.
 */
export const pendingTransitions = new Map<string, string>([]);
