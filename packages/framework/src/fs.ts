import { open } from 'node:fs/promises';

/**
 * fsyncs a directory so that a rename inside it survives a crash. Best effort: some platforms cannot open a
 * directory, and the renamed file itself has already been fsynced by the callers.
 */
export async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not fatal; see above.
  }
}
