import { stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { DistanceMetric, GalleryEmbedderInfo, IdentityAggregation } from '../contracts/gallery.js';
import { FacerecError, InvalidOptionsError } from '../errors.js';
import { LOCK_STALE_MS, lockFile, writeFileAtomic } from '../fs.js';
import { parseOptions } from '../options.js';
import { thresholdSchema } from './format.js';
import { FileGallery, GALLERY_FILE_MODE, type GallerySearchOptions, readGalleryFile } from './gallery.js';
import {
  type GalleryReloadDetails,
  SnapshotGalleryStore,
  type StoredGalleryText,
  swapDetails,
} from './snapshot-store.js';

/** Options of {@link FileGalleryStore.open}. */
export interface FileGalleryStoreOptions extends GallerySearchOptions {
  /**
   * The embedder the store is for: an existing file must have been enrolled with it (`EmbedderMismatchError`
   * otherwise), and a missing file is created for it. Without it, the file must exist.
   */
  readonly embedder?: GalleryEmbedderInfo;
  /** Create the file when it does not exist (needs `embedder`). Default true. */
  readonly create?: boolean;
  /** For a new file: the distance. Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** For a new file. Default `nearest`. */
  readonly aggregation?: IdentityAggregation;
  /** For a new file: the threshold (default 0, uncalibrated: every face `unknown` until it is set). */
  readonly threshold?: number;
  /**
   * How often `match`, `identities` and `list` look whether another process rewrote the file (one `stat`), in
   * milliseconds; a changed file is read and swapped in. Default 1000; 0 looks on every call. Mutations always
   * start from the file as it is.
   */
  readonly reloadIntervalMs?: number;
  /**
   * How long a search waits for the read of a rewritten file it started before it searches the gallery held, in
   * milliseconds (the read goes on, and later searches get the new version). Default: until the read ends; a
   * server reading a large gallery (a second or more at 100,000 examples) gives a bound (`openGalleryStore`:
   * 250).
   */
  readonly refreshWaitMs?: number;
  /**
   * Told when a rewritten file cannot be used (not a valid gallery, or enrolled with another embedder): the
   * store keeps the gallery it had. Default: ignored (the next change of the file is tried again).
   */
  readonly onReloadError?: (error: Error) => void;
  /**
   * Told when another process's rewrite of the file was read and swapped in: its identity count, metric and
   * threshold, and `changed` when those two differ from the version it replaced (`metric euclidean → cosine`).
   */
  readonly onReload?: (details: GalleryReloadDetails) => void;
  /** How long a mutation waits for another process's lock on the file, in milliseconds. Default 10,000. */
  readonly lockTimeoutMs?: number;
  /**
   * Told when a mutation finds the file locked by another writer and waits: a live one, or one that died holding
   * it, whose lock is taken over once 10 s old (the wait is otherwise unexplained).
   */
  readonly onLockWait?: () => void;
}

const optionsSchema = z.strictObject({
  embedder: z.custom<GalleryEmbedderInfo>((v) => typeof v === 'object' && v !== null).optional(),
  create: z.boolean().default(true),
  metric: z.enum(['euclidean', 'cosine']).optional(),
  aggregation: z.enum(['nearest', 'centroid']).optional(),
  threshold: thresholdSchema.optional(),
  reloadIntervalMs: z.number().int().min(0).default(1000),
  refreshWaitMs: z.number().int().min(0).optional(),
  onReloadError: z.custom<(error: Error) => void>((v) => typeof v === 'function').optional(),
  onReload: z.custom<(details: GalleryReloadDetails) => void>((v) => typeof v === 'function').optional(),
  lockTimeoutMs: z.number().int().min(0).default(10_000),
  onLockWait: z.custom<() => void>((v) => typeof v === 'function').optional(),
  kernel: z.enum(['auto', 'wasm', 'js']).optional(),
});

/** What identifies one version of the file: every write renames a new file into place (a new inode). */
async function versionOf(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    if (s.isDirectory()) {
      throw new InvalidOptionsError(
        'FileGalleryStore',
        `${file} is a folder, not a gallery file; name a file in it`,
      );
    }
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw code === 'ENOTDIR' ? pathError(file, error) : error;
  }
}

/**
 * The file store: a gallery file (the JSON format of {@link FileGallery}) that can be changed in place, the
 * embedded default. It holds the file's gallery in memory and searches it exactly like {@link FileGallery};
 * every mutation reads the file as it is, applies the change and writes it back atomically (`writeFileAtomic`:
 * readers see the old file or the new one), holding a lock (`<file>.lock`, a directory, via proper-lockfile)
 * so that two processes adding at once both land. Mutations in one process are queued, one at a time.
 *
 * Another process's changes (the CLI adding a person while `facerec serve` runs) are picked up by searches
 * within `reloadIntervalMs`; a rewritten file that is corrupt or from another embedder is refused and the store
 * keeps the gallery it had.
 *
 * @example
 * const store = await FileGalleryStore.open('team.gallery.json', { embedder });
 * await addFacesFromPhotos(store, { identity: 'alice', photos: [{ photo: bytes }], detector, embedder });
 * const [match] = await store.match([embedding]);
 */
export class FileGalleryStore extends SnapshotGalleryStore {
  /** The gallery file. */
  readonly file: string;
  readonly location: string;
  readonly #search: GallerySearchOptions;
  readonly #lockTimeoutMs: number;
  readonly #onLockWait: (() => void) | undefined;
  readonly #onReload: ((details: GalleryReloadDetails) => void) | undefined;

  private constructor(file: string, o: z.output<typeof optionsSchema>) {
    super({
      embedder: o.embedder,
      reloadIntervalMs: o.reloadIntervalMs,
      refreshWaitMs: o.refreshWaitMs,
      onReloadError: o.onReloadError,
    });
    this.file = file;
    this.location = file;
    this.#search = o.kernel ? { kernel: o.kernel } : {};
    this.#lockTimeoutMs = o.lockTimeoutMs;
    this.#onLockWait = o.onLockWait;
    this.#onReload = o.onReload;
  }

  protected override swapped(_previousVersion: string | undefined, previous: FileGallery | undefined): void {
    this.#onReload?.(swapDetails(this.gallery, previous));
  }

  /**
   * Opens the gallery file `file`, creating it (empty, for `options.embedder`) when it does not exist.
   *
   * @throws EmbedderMismatchError when the file was enrolled with another embedder than `options.embedder`.
   * @throws GalleryFormatError when the file is not a valid gallery.
   * @throws InvalidOptionsError for bad options, or a missing file and no embedder to create it for (or `create: false`).
   */
  static async open(file: string, options: FileGalleryStoreOptions = {}): Promise<FileGalleryStore> {
    const o = parseOptions(optionsSchema, options, 'FileGalleryStore');
    const store = new FileGalleryStore(file, o);
    const { embedder } = o;
    await store.initialise(
      embedder &&
        o.create &&
        (() =>
          FileGallery.create(
            {
              embedder,
              metric: o.metric,
              aggregation: o.aggregation,
              threshold: o.threshold,
              identities: [],
            },
            store.#search,
          )),
    );
    return store;
  }

  protected async read(known: string | undefined): Promise<StoredGalleryText | 'unchanged' | 'missing'> {
    const version = await versionOf(this.file);
    if (version === undefined) return 'missing';
    if (version === known) return 'unchanged';
    return { version, text: await readGalleryFile(this.file) };
  }

  protected parse(text: string): Promise<FileGallery> {
    return FileGallery.parseInSlices(text, { ...this.#search, source: this.file });
  }

  /** Mutations hold the file lock, so `replacing` is the current version: nothing to compare. */
  protected async write(text: Iterable<string>): Promise<string> {
    await writeFileAtomic(this.file, text, { mode: GALLERY_FILE_MODE });
    return (await versionOf(this.file)) ?? '';
  }

  protected override async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const release = await lockGallery(this.file, this.#lockTimeoutMs, this.#onLockWait);
    try {
      return await work();
    } finally {
      await release();
    }
  }
}

/**
 * What a file-system error on the way to `file` (or its lock) means for the store: a missing folder, a path
 * through a file, a folder it cannot write in; any other error as it is.
 */
function pathError(file: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const folder = path.dirname(file);
  if (code === 'ENOENT') {
    return new InvalidOptionsError(
      'gallery store',
      `${file}: the folder ${folder} does not exist; create it first (a file store is one file in a folder)`,
      { cause: error },
    );
  }
  if (code === 'ENOTDIR') {
    return new InvalidOptionsError('gallery store', `${file}: a part of ${folder} is a file, not a folder`, {
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new FacerecError(
      'GALLERY_NOT_WRITABLE',
      `${file}: cannot write in its folder ${folder} (${code}), where its lock ${path.basename(file)}.lock and new versions are written`,
      { cause: error },
    );
  }
  return error;
}

/** Takes the cross-process lock of the gallery file (see {@link lockFile}): its errors said as the store's. */
async function lockGallery(
  file: string,
  timeoutMs: number,
  onWait: (() => void) | undefined,
): Promise<() => Promise<void>> {
  try {
    return await lockFile(file, timeoutMs, onWait);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw pathError(file, error);
    throw new FacerecError(
      'GALLERY_LOCKED',
      `${file}: another process has held its lock (${file}.lock) for over ${timeoutMs / 1000} s; try again when ` +
        `it is done (a lock left by a process that died is taken over after ${LOCK_STALE_MS / 1000} s)`,
      { cause: error },
    );
  }
}
