import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it, vi } from 'vitest';
import { openSqliteQueueJournal, QueueFileError } from '../src/index.js';

// better-sqlite3 installed without its install script (npm 12 unless approved, --ignore-scripts): the package
// imports, and its constructor fails to find the native module, with this message.
vi.mock('better-sqlite3', () => ({
  default: () => {
    throw new Error(
      'Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node',
    );
  },
}));

it('says how to build better-sqlite3 or do without it when its native module is missing', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'facerec-queue-')), 'queue.sqlite');
  const error = await openSqliteQueueJournal(file).catch((e: unknown) => e);
  expect(QueueFileError.isInstance(error)).toBe(true);
  expect((error as Error).message).toBe(
    `queue file ${file}: better-sqlite3's native module is missing or built for another Node.js (its install ` +
      'script did not run, or ran under another version): run `npm rebuild better-sqlite3` (allowing its install script), or use the in-memory queue ' +
      '(facerec serve --queue memory)',
  );
});
