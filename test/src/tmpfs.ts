import { execFile as execFileCallback } from 'node:child_process';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCallback);

export interface SmallTmpfs {
  readonly dir: string;
  /** Writes a filler file until the file system answers ENOSPC (a real full disk); resolves then. */
  fill(): Promise<void>;
  /** Deletes the filler: the space is back. */
  free(): Promise<void>;
  /** Unmounts (lazily, so open descriptors of a still-running process cannot block it). */
  unmount(): Promise<void>;
}

/**
 * A real, tiny tmpfs mounted at `dir` (created if missing), to get real ENOSPC errors. Needs
 * root (CAP_SYS_ADMIN); throws otherwise, so a test depending on it fails rather than skips.
 */
export async function mountSmallTmpfs(dir: string, sizeBytes = 64 * 1024): Promise<SmallTmpfs> {
  if (process.getuid?.() !== 0) throw new Error('mounting a tmpfs needs root');
  await mkdir(dir, { recursive: true });
  await execFile('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir]);
  const filler = join(dir, 'filler.bin');
  let mounted = true;
  return {
    dir,
    async fill() {
      const file = await open(filler, 'a');
      const chunk = Buffer.alloc(4096, 0x78);
      try {
        for (;;) await file.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        await file.close();
      }
    },
    async free() {
      await unlink(filler).catch(() => undefined);
    },
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await execFile('umount', ['-l', dir]);
    },
  };
}
