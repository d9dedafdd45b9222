import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '@ccproxy/core';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import { startHostileUpstream, type HostileUpstream } from './hostile-upstream.ts';

export interface HostileStack {
  db: Database;
  hostile: HostileUpstream;
  proxy: RunningProxy;
  /** A PlanOnly access key: every request goes to the hostile upstream. */
  key: string;
  close(): Promise<void>;
}

/** The real proxy (in process, on a real Postgres, with its usage spool) in front of a hostile Anthropic upstream. */
export async function startHostileStack(name: string, env: Record<string, string> = {}): Promise<HostileStack> {
  const db = await openTestDatabase();
  const hostile = await startHostileUpstream();
  const dir = await mkdtemp(join(tmpdir(), `ccproxy-${name}-`));
  const proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: hostile.url, ...env }, { spoolDir: dir });
  const { key } = await seedKey(db, { routing: 'PlanOnly' });
  return {
    db,
    hostile,
    proxy,
    key,
    async close() {
      await proxy.close();
      await hostile.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
