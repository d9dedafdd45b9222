import type { Logger } from '@ccproxy/core';

/** A started command: what the signal handler needs to stop it gracefully. */
export interface Running {
  logger: Logger;
  stop(): Promise<void>;
}
