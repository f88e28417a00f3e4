import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidOptionsError } from '@facerec/framework';
import type Database from 'better-sqlite3';
import { QueueFileError } from './errors.js';
import type { JournalChanges, JournalContents, JournalMessage, QueueJournal } from './journal.js';

const COMPONENT = 'openSqliteQueueJournal';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    delivery INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS deduplication (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (queue, id)
  ) STRICT;
  CREATE INDEX IF NOT EXISTS deduplication_until ON deduplication (until);
`;

interface MessageRow {
  seq: number;
  queue: string;
  id: string;
  body: string;
  attributes: string;
  receive_count: number;
  visible_at: number;
  delivery: number;
}

/**
 * A {@link QueueJournal} in one SQLite file (better-sqlite3), for `InMemoryQueueTransport`'s `journal` option:
 * every change is one transaction in write-ahead-log mode, committed before the transport's call returns, so a
 * process killed at any moment (kill -9) loses nothing it had accepted (a power cut may lose the last commits:
 * `synchronous = NORMAL`, no fsync per commit).
 *
 * The file is opened in exclusive locking mode: a second process on the same file is refused with a
 * {@link QueueFileError} instead of both serving one queue from two memories.
 *
 * The file's folder must exist (a `QueueFileError` otherwise).
 * better-sqlite3 (an optional peer dependency) is loaded by this function only.
 *
 * @example
 * const transport = new InMemoryQueueTransport({ journal: await openSqliteQueueJournal('queue.sqlite') });
 */
export async function openSqliteQueueJournal(file: string): Promise<QueueJournal> {
  if (typeof file !== 'string' || file.length === 0) {
    throw new InvalidOptionsError(COMPONENT, 'file must be a non-empty path');
  }
  let open: typeof Database;
  try {
    open = (await import('better-sqlite3')).default;
  } catch (cause) {
    throw new InvalidOptionsError(
      COMPONENT,
      'the durable queue needs better-sqlite3 (npm install better-sqlite3@12); it could not be loaded',
      { cause },
    );
  }
  // Not created: a mistyped path would otherwise make folders, and the queue land where nobody looks for it.
  const folder = path.dirname(path.resolve(file));
  let isFolder: boolean;
  try {
    isFolder = statSync(folder, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch (cause) {
    // ENOTDIR (a part of the path is a file), EACCES.
    throw new QueueFileError(
      file,
      `cannot reach its folder ${folder} (${(cause as { code?: string }).code})`,
      {
        cause,
      },
    );
  }
  if (!isFolder) {
    const exists = existsSync(folder);
    throw new QueueFileError(
      file,
      exists ? `${folder} is a file, not a folder` : `its folder ${folder} does not exist; create it first`,
    );
  }
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
    throw new QueueFileError(file, 'is a folder; give the path of a file in it (e.g. queue.sqlite)');
  }
  let db: Database.Database;
  try {
    // A new queue file is private (it holds face crops and who they were recognised as): created here with mode
    // 600, which SQLite gives its -wal and -shm files too; an existing file keeps the mode it has.
    if (!existsSync(file)) closeSync(openSync(file, 'wx', 0o600));
    // No busy wait: the only contender for the file is another process, which holds it for its whole life.
    db = open(file, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    // In WAL mode a commit has written its pages to the log (the OS holds them) when it returns: a killed
    // process loses nothing. NORMAL leaves out the fsync per commit, so a power cut can lose the last ones;
    // FULL would keep those too, at 3–7 times the cost per commit measured here.
    db.pragma('synchronous = NORMAL');
    // Takes the exclusive lock now (the first write does), so a second process fails here, not mid-run.
    db.exec(SCHEMA);
  } catch (cause) {
    const busy = (cause as { code?: string }).code === 'SQLITE_BUSY';
    // better-sqlite3 loads its native module on first use: missing when its install script did not run (npm
    // 12 blocks install scripts unless approved, `--ignore-scripts`).
    const unbuilt = /bindings file|ERR_DLOPEN_FAILED|NODE_MODULE_VERSION/.test(
      `${(cause as Error).message} ${(cause as { code?: string }).code ?? ''}`,
    );
    throw new QueueFileError(
      file,
      busy
        ? 'in use by another journal, in another process or this one (one facerec serve per queue file; close the journal before opening it again)'
        : unbuilt
          ? "better-sqlite3's native module is missing or built for another Node.js (its install script did not run, or ran under another version): " +
            'run `npm rebuild better-sqlite3` (allowing its install script), or use the in-memory queue ' +
            '(facerec serve --queue memory)'
          : (cause as Error).message,
      { cause },
    );
  }
  return new SqliteQueueJournal(db);
}

class SqliteQueueJournal implements QueueJournal {
  readonly #db: Database.Database;
  readonly #commit: (changes: JournalChanges, now: number) => void;

  constructor(db: Database.Database) {
    this.#db = db;
    const put = db.prepare(
      `INSERT OR REPLACE INTO messages (seq, queue, id, body, attributes, receive_count, visible_at, delivery)
       VALUES (@seq, @queue, @id, @body, @attributes, @receiveCount, @visibleAt, @delivery)`,
    );
    const remove = db.prepare('DELETE FROM messages WHERE seq = ?');
    const remember = db.prepare('INSERT OR REPLACE INTO deduplication (queue, id, until) VALUES (?, ?, ?)');
    const forget = db.prepare('DELETE FROM deduplication WHERE until <= ?');
    this.#commit = db.transaction((changes: JournalChanges, now: number) => {
      for (const m of changes.put ?? []) put.run({ ...m, attributes: JSON.stringify(m.attributes) });
      for (const seq of changes.delete ?? []) remove.run(seq);
      if (changes.deduplication?.length) {
        forget.run(now);
        for (const d of changes.deduplication) remember.run(d.queue, d.id, d.until);
      }
    });
  }

  load(now: number): JournalContents {
    const rows = this.#db.prepare('SELECT * FROM messages ORDER BY seq').all() as MessageRow[];
    const messages: JournalMessage[] = rows.map((row) => ({
      seq: row.seq,
      queue: row.queue,
      id: row.id,
      body: row.body,
      attributes: JSON.parse(row.attributes) as Record<string, string>,
      receiveCount: row.receive_count,
      visibleAt: row.visible_at,
      delivery: row.delivery,
    }));
    const deduplication = this.#db
      .prepare('SELECT queue, id, until FROM deduplication WHERE until > ?')
      .all(now) as { queue: string; id: string; until: number }[];
    return { messages, deduplication };
  }

  commit(changes: JournalChanges, now: number): void {
    this.#commit(changes, now);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
