import { join } from 'node:path';
import type { createMetricsRegistry, Database, Logger, PriceTable } from '@ccproxy/core';
import { Governor, UsageRecorder } from '@ccproxy/proxy';

/**
 * Budgets, rate limits and the usage recorder, started together for `ccproxy proxy` and
 * `ccproxy local`: the recorder tells the governor what it stored, so a budget's spend counts
 * each request once, whether still in flight or already in Postgres. The usage spool lives in
 * the data dir (an emptyDir volume in a pod) until Postgres has it.
 */
export async function startMetering(options: {
  db: Database;
  logger: Logger;
  registry: ReturnType<typeof createMetricsRegistry>;
  prices: PriceTable;
  dataDir: string;
  budgetRefreshMs: number;
  rateLimitSyncMs: number;
  streamSlotLeaseMs: number;
}): Promise<{ governor: Governor; usage: UsageRecorder }> {
  const { db, logger, registry, prices } = options;
  const governor = new Governor({
    db,
    logger,
    registry,
    prices,
    budgetRefreshMs: options.budgetRefreshMs,
    rateSyncMs: options.rateLimitSyncMs,
    slotLeaseMs: options.streamSlotLeaseMs,
  });
  await governor.start();
  const usage = new UsageRecorder({
    db,
    logger,
    registry,
    spoolDir: join(options.dataDir, 'usage-spool'),
    prices,
    onStored: (records) => governor.budgets.stored(records),
  });
  await usage.start();
  return { governor, usage };
}
