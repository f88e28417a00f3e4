import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { chmod, chown, type FileHandle, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { onExit } from 'signal-exit';
import { FacerecError, InvalidOptionsError } from './errors.js';

/** What {@link writeFileAtomic} writes: text (UTF-8), bytes, or pieces of either, possibly produced lazily. */
export type AtomicWriteData =
  | string
  | Uint8Array
  | Iterable<string | Uint8Array>
  | AsyncIterable<string | Uint8Array>;

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * Runs once all the data is written and fsynced, before the rename, with the temporary file's path (to read
   * what was written). Throwing abandons the write: the temporary file is removed and `file` is left as it was (a
   * download whose hash does not match, say).
   */
  readonly beforeRename?: (temp: string) => unknown;
  /**
   * Permissions of a new file (narrowed by the umask, as `open` does); a file replaced keeps its own. Default
   * `0o666`, the umask's (world-readable under the usual 022). Galleries pass `0o600`: they hold biometric data.
   */
  readonly mode?: number;
}

// Text pieces are joined up to this size before a write, so many small pieces cost few system calls.
const TEXT_FLUSH_CHARS = 1 << 20;

/**
 * Creates `dir` and the folders missing above it, as `mkdir(dir, { recursive: true })` does, one level at a time.
 * Written by hand because Node's recursive mkdir never returns (it spins) where the system answers ENOENT for a
 * folder whose parent exists (/proc, /sys: `--crops-dir /proc/x` hung); here that is the ENOENT error. A file in
 * the way is ENOTDIR (its `path` names it: `dir` itself or a folder above it); a folder there already is fine.
 */
export async function makeFolder(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; ) {
    const found = await stat(at).catch((error: NodeJS.ErrnoException) => {
      // ENOTDIR: a file above; found, and named, by going up.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw error;
    });
    if (found) {
      if (found.isDirectory()) break;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {
        code: 'ENOTDIR',
        syscall: 'mkdir',
        path: at,
      });
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const folder of missing.reverse()) {
    await mkdir(folder).catch((error: NodeJS.ErrnoException) => {
      // Made meanwhile by another process: as good.
      if (error.code !== 'EEXIST') throw error;
    });
  }
}

/**
 * Writes `data` to `file` atomically and durably: into a temporary file beside it (same directory, so the
 * rename cannot cross filesystems), fsynced, renamed over `file`, then the directory fsynced. A reader sees
 * the old file or the new one, never a partial one; after a crash the new content is either complete under
 * `file` or absent. On failure the temporary file is removed; a crash leaves at most a stray
 * `<file>.<pid>.<random hex>.tmp`, which the next write of `file` (and every `ModelStore` pull, and every model
 * cache look-up) removes once stale ({@link sweepStaleTemporaries}).
 *
 * Missing parent directories are created (`facerec enroll --out gallery/gallery.json` in a fresh clone).
 * Concurrent writers of one `file` are safe: each has its own temporary file and
 * the last rename wins.
 *
 * @example
 * ```ts
 * await writeFileAtomic('gallery.json', gallery.serialise());
 * await writeFileAtomic('model.onnx', bytes);
 * ```
 */
export async function writeFileAtomic(
  file: string,
  data: AtomicWriteData,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    await makeFolder(path.dirname(file));
    await sweepStaleTemporaries(file);
    handle = await open(temp, 'wx', options.mode ?? 0o666);
  } catch (error) {
    // A full disk can refuse the folder or the temporary file's entry too, before any byte is written.
    throw noSpace(error, file) ?? error;
  }
  trackTemporary(temp);
  try {
    try {
      await writeAll(handle, data);
      // Without fsync a crash after the rename could leave the new name over incomplete data.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await options.beforeRename?.(temp);
    // A file replaced keeps its permissions, group and (for root, who may give it) owner: a gallery made readable
    // by a service account's group (chgrp, chmod 640) stays so through every rewrite, and one made private stays
    // private. Owner and group go first: chown clears set-id bits.
    const replaced = await stat(file).catch(() => undefined);
    if (replaced?.isFile()) {
      await keepOwnership(temp, replaced);
      await chmod(temp, replaced.mode & 0o7777);
    }
    await renameReplacing(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw noSpace(error, file) ?? error;
  } finally {
    liveTemporaries.delete(temp);
  }
  await syncDir(path.dirname(file));
}

/**
 * A full disk is the machine's, not the program's: said plainly, with the file and that it is unchanged (the new
 * content went to the temporary file only), rather than as Node's bare "ENOSPC: …, write". Undefined for any
 * other error.
 */
function noSpace(error: unknown, file: string): FacerecError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const why = code === 'ENOSPC' ? 'no space left on its device' : 'over the disk quota';
  return new FacerecError('NO_SPACE', `cannot write ${file}: ${why} (${code}); it is unchanged`, {
    cause: error,
  });
}

/**
 * Temporary files of writes in progress, removed when the process ends mid-write (`process.exit`, Ctrl-C,
 * SIGTERM, SIGHUP: a model download cut short would otherwise leave up to 100 MB until the next pull sweeps
 * it). `signal-exit` runs the removal on a signal only when nothing else handles it (it then ends the process as
 * the signal would), so a program with its own Ctrl-C handling (`facerec serve`'s graceful stop) keeps it. A
 * crash or SIGKILL still leaves them to the sweep.
 */
const liveTemporaries = new Set<string>();
let removeOnExit = false;
function trackTemporary(temp: string): void {
  if (!removeOnExit) {
    removeOnExit = true;
    onExit(() => {
      for (const t of liveTemporaries) rmSync(t, { force: true });
    });
  }
  liveTemporaries.add(temp);
}

/**
 * How long a temporary file of {@link writeFileAtomic} may sit untouched before it counts as a crash's: long
 * enough that no live download (which writes at least every stall timeout, 30 s) is ever swept.
 */
export const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/**
 * How long a temporary file whose writer's process id is not running on this machine may sit untouched before
 * it is swept: a killed pull or build (a timed-out cold start) leaves up to 100 MB, which an hour's wait would
 * let pile up in a small `/tmp`. Not at once: the writer may be another machine sharing the folder (its process
 * ids are not this machine's), which touches a live write at least every 30 s.
 */
export const DEAD_WRITER_TEMPORARY_MS = 2 * 60 * 1000;

/** Whether a process with this id runs here (EPERM: it runs, as another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes the temporary files of `file` that crashed writers left (untouched for `olderThanMs`, or for
 * {@link DEAD_WRITER_TEMPORARY_MS} when the process id in the name runs no process here): a write in progress
 * elsewhere touches its file far more often. Best effort: a folder that cannot be read or written (a read-only
 * model cache) is left as it is, silently.
 */
export async function sweepStaleTemporaries(file: string, olderThanMs = STALE_TEMPORARY_MS): Promise<void> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const names = await readdir(dir).catch(() => [] as string[]);
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => n.startsWith(`${base}.`) && /^\d+\.[0-9a-f]+\.tmp$/.test(n.slice(base.length + 1)))
      .map(async (n) => {
        const temp = path.join(dir, n);
        const info = await stat(temp).catch(() => undefined);
        if (!info) return;
        const pid = Number(n.slice(base.length + 1).split('.')[0]);
        const limit =
          pid !== process.pid && !running(pid)
            ? Math.min(olderThanMs, DEAD_WRITER_TEMPORARY_MS)
            : olderThanMs;
        if (now - info.mtimeMs > limit) await rm(temp, { force: true }).catch(() => undefined);
      }),
  );
}

async function writeAll(handle: FileHandle, data: AtomicWriteData): Promise<void> {
  if (typeof data === 'string') return writeBytes(handle, Buffer.from(data, 'utf8'));
  if (data instanceof Uint8Array) return writeBytes(handle, data);
  let text: string[] = [];
  let chars = 0;
  const flushText = async () => {
    if (text.length === 0) return;
    const joined = text.join('');
    text = [];
    chars = 0;
    await writeBytes(handle, Buffer.from(joined, 'utf8'));
  };
  for await (const piece of data) {
    if (typeof piece === 'string') {
      text.push(piece);
      chars += piece.length;
      if (chars >= TEXT_FLUSH_CHARS) await flushText();
    } else {
      await flushText();
      await writeBytes(handle, piece);
    }
  }
  await flushText();
}

async function writeBytes(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength; ) {
    offset += (await handle.write(bytes, offset, bytes.byteLength - offset)).bytesWritten;
  }
}

// On Windows a rename onto a file another process has open fails transiently; elsewhere it is atomic.
async function renameReplacing(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (
        process.platform !== 'win32' ||
        attempt >= 10 ||
        !['EPERM', 'EACCES', 'EBUSY'].includes(code ?? '')
      ) {
        throw error;
      }
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
  }
}

// fsyncs a directory so that a rename inside it survives a crash. Best effort: some platforms cannot open a
// directory, and the renamed file itself has already been fsynced.
async function syncDir(dir: string): Promise<void> {
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

/**
 * Gives `temp` the owner (when running as root) and group of the file it replaces. A user who is no member of
 * that group may not give it (EPERM): the new file then has the user's group, as any file they write.
 */
async function keepOwnership(temp: string, replaced: { uid: number; gid: number }): Promise<void> {
  const uid = process.getuid?.();
  if (uid === undefined) return; // Windows: no POSIX owners
  const keepUid = uid === 0 && replaced.uid !== uid;
  if (!keepUid && replaced.gid === process.getgid?.()) return;
  await chown(temp, keepUid ? replaced.uid : -1, replaced.gid).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPERM') throw error;
  });
}

/**
 * The sha256 of a file (hex), streamed: a 100 MB model is never held whole in memory. Read in 1 MiB chunks:
 * 2.5× faster than the default 64 KiB (about 70 ms for 94 MB here).
 */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Reads a file of at most `maxBytes`, refusing a larger one before reading it (by its size), and a pipe or a
 * device, which has no size (`<(curl …)`, `/dev/zero`), or a stream (`process.stdin`), once more than
 * `maxBytes` have come: a huge file is never loaded only to be refused (Node's `readFile` reads it whole, and
 * fails past 2 GiB with an error of its own). Written by hand: `readFile` has no size limit.
 *
 * @param tooLarge Makes the error thrown: with the file's size, or `undefined` for a pipe, device or stream.
 * @throws What `tooLarge` returns; file-system errors (ENOENT, EISDIR, EACCES) as they are.
 */
export async function readFileUpTo(
  file: string | AsyncIterable<Uint8Array>,
  maxBytes: number,
  tooLarge: (size: number | undefined) => Error,
): Promise<Buffer> {
  if (typeof file !== 'string') {
    // From JavaScript, anything can come: said, rather than "file is not async iterable".
    if (typeof (file as Partial<AsyncIterable<Uint8Array>> | null)?.[Symbol.asyncIterator] !== 'function') {
      throw new InvalidOptionsError(
        'file',
        `must be a path (a string) or a stream of bytes, not ${file === null ? 'null' : typeof file}`,
      );
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of file) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge(undefined);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    if (info.isFile()) {
      if (info.size > maxBytes) throw tooLarge(info.size);
      return await handle.readFile();
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(undefined);
      chunks.push(chunk.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/** A lock not refreshed for this long belongs to a process that died, and is taken over (see {@link lockFile}). */
export const LOCK_STALE_MS = 10_000;

/**
 * Takes the cross-process lock of `file` (`<file>.lock`, a directory, via proper-lockfile), waiting up to
 * `timeoutMs` for another holder; resolves to its release. The holder refreshes it while it lives, and a lock
 * that was not refreshed for {@link LOCK_STALE_MS} (its process killed) is taken over. A process that exits, or
 * ends on a signal nothing else handles, removes its locks (proper-lockfile's exit handler); one killed outright
 * leaves its lock to be taken over so.
 *
 * @throws the last `ELOCKED` error when the wait times out; any other file-system error as it is.
 */
export async function lockFile(
  file: string,
  timeoutMs: number,
  /** Called once when another holder makes this call wait (a live writer, or a dead one's lock not yet stale). */
  onWait?: () => void,
): Promise<() => Promise<void>> {
  const started = Date.now();
  for (let waited = false; ; waited = true) {
    try {
      return await lockfile.lock(file, {
        realpath: false,
        lockfilePath: `${file}.lock`,
        stale: LOCK_STALE_MS,
        // The lock is held for one read-modify-write; losing it then cannot be undone, so it is not thrown
        // from a timer (proper-lockfile's default, which would crash the process).
        onCompromised: () => undefined,
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() - started >= timeoutMs)
        throw error;
      if (!waited) onWait?.();
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
    }
  }
}
