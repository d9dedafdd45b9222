import { stat } from 'node:fs/promises';

/** Whether a path exists (cached builds and venvs appear by an atomic rename, so existence is the marker). */
export function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
