import { CallGate } from '../call-gate.js';
import type {
  DistanceMetric,
  GalleryEmbedderInfo,
  GalleryMatch,
  IdentityAggregation,
  MatchOptions,
} from '../contracts/gallery.js';
import type {
  AddedExample,
  ExamplePage,
  GalleryStore,
  ListExamplesOptions,
  ListPageOptions,
  NewExample,
  StoredExample,
} from '../contracts/gallery-store.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { FacerecError } from '../errors.js';
import { checkPage, prepareExamples } from './collection.js';
import { GalleryStoreNotFoundError, UnknownIdentityError } from './errors.js';
import { type FileGallery, type GallerySearchOptions, prepareExampleIds } from './gallery.js';
import type { GalleryStoreLogger } from './open.js';
import type { GalleryCalibration } from './types.js';

/** One version of a stored gallery file: its text and what identifies it (a file's inode, an object's ETag). */
export interface StoredGalleryText {
  readonly version: string;
  readonly text: string;
}

/** What a refresh found. */
export type RefreshOutcome = 'unchanged' | 'updated' | 'refused';

/**
 * Thrown by {@link SnapshotGalleryStore.write} when the stored gallery is no longer the version the mutation
 * started from (another writer got there first): the mutation is then run again on the new version.
 */
export class GalleryWriteConflictError extends FacerecError {
  static override readonly errorName: string = 'GalleryWriteConflictError';
  constructor(location: string, options?: { cause?: unknown }) {
    super('GALLERY_WRITE_CONFLICT', `${location} changed while it was being updated`, options);
  }
}

/** Options of the {@link SnapshotGalleryStore} constructor. */
export interface SnapshotGalleryStoreOptions extends GallerySearchOptions {
  /** The embedder every later version must be compatible with. Default: the first version's. */
  readonly embedder?: GalleryEmbedderInfo | undefined;
  /** Searches look for a new version at most this often, in milliseconds; 0: on every call. */
  readonly reloadIntervalMs: number;
  /**
   * How long a search waits for the look it starts (once `reloadIntervalMs` passed) before it searches the
   * gallery it holds, in milliseconds; the look goes on, and a new version it finds is swapped in for later
   * searches. For a store on a network, whose server can take seconds to time out. Searches while that look
   * is still under way, or while the server is known to be out of reach, do not wait at all. Default: until
   * the look ends.
   */
  readonly refreshWaitMs?: number | undefined;
  /** Told when a new version cannot be used (corrupt, another embedder): the store keeps the one it has. */
  readonly onReloadError?: ((error: Error) => void) | undefined;
  /** Milliseconds since some epoch (default `Date.now`); tests pass a fake clock. */
  readonly now?: () => number;
}

/** How often a mutation is tried again after a write conflict before it fails. */
const MAX_CONFLICT_RETRIES = 10;
/**
 * The pause before try n after a conflict: random, up to 25 ms × 2^n and at most 2 s (at most about 9 s in all).
 * Random, because a writer whose copy is current (a cheap "unchanged" read) otherwise wins every race against
 * one that must download the new version first, for as long as it keeps writing.
 */
const conflictPauseMs = (attempt: number) => Math.random() * Math.min(25 * 2 ** attempt, 2000);
/** The version recorded as refused while nothing is stored (no store version looks like it). */
const MISSING = '\0missing';

/**
 * A {@link GalleryStore} kept as a gallery file somewhere (a local file, an object in a bucket): the whole
 * gallery is held in memory as an immutable {@link FileGallery} and searched there; a mutation reads the
 * stored version, applies the change and writes the whole file back; searches pick up another writer's version
 * within `reloadIntervalMs`, and refuse (keeping what they have) one that is corrupt or from another embedder.
 * The swap is one assignment: a search uses the old gallery or the new one, never a mix.
 *
 * Subclasses implement where the text lives: {@link SnapshotGalleryStore.read} (the current version, unless it
 * is the one already held), {@link SnapshotGalleryStore.write} (replace a version, atomically), and optionally
 * {@link SnapshotGalleryStore.exclusive} (a cross-process lock around a mutation).
 */
export abstract class SnapshotGalleryStore implements GalleryStore {
  readonly specificationVersion = SPECIFICATION_VERSION;
  abstract readonly location: string;
  readonly #options: SnapshotGalleryStoreOptions;
  readonly #now: () => number;
  #expected: GalleryEmbedderInfo | undefined;
  #gallery: FileGallery | undefined;
  #version: string | undefined;
  #created = false;
  /** A version that could not be used and was already reported. */
  #refused: string | undefined;
  /** The last look failed because the store's server could not be reached (reported once). */
  #unreachable = false;
  /** Why, for {@link SnapshotGalleryStore.checkReachable}. */
  #unreachableError: Error | undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #refreshing: Promise<RefreshOutcome> | undefined;
  /** Told when the look under way got the server's answer (see {@link SnapshotGalleryStore.checkReachable}). */
  #onAnswered: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Calls in flight: `close` lets them finish; later ones reject with `DisposedError`. */
  readonly #calls = new CallGate(() => `gallery store ${this.location}`);

  protected constructor(options: SnapshotGalleryStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#expected = options.embedder;
  }

  /**
   * The stored version, or `'unchanged'` when it is `known`, or `'missing'` when nothing is stored.
   * @throws when it cannot be read.
   */
  protected abstract read(known: string | undefined): Promise<StoredGalleryText | 'unchanged' | 'missing'>;

  /**
   * Stores `text` in place of version `replacing` (`undefined`: where there is none yet), atomically: readers
   * see the old version or the new one. Resolves to the new version.
   * @throws {@link GalleryWriteConflictError} when the stored version is no longer `replacing`.
   */
  protected abstract write(text: Iterable<string>, replacing: string | undefined): Promise<string>;

  /** Runs one mutation exclusively across processes (a lock); by default it just runs it. */
  protected exclusive<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  /**
   * Told when a new version cannot be used: the store keeps the one it has. By default it passes the error to
   * the `onReloadError` option.
   */
  protected refused(error: Error): void {
    this.#options.onReloadError?.(error);
  }

  /** Told when the store answers again after it could not be reached. By default it does nothing. */
  protected reachable(): void {}

  /**
   * Told when searches swapped in a new version (another writer's), with the version and gallery it replaced.
   * By default it does nothing.
   */
  protected swapped(_previousVersion: string | undefined, _previous: FileGallery | undefined): void {}

  /**
   * Parses one version's text. The built-in stores parse a slice at a time (`FileGallery.parseInSlices`), so that
   * searches go on while a large new version is read.
   */
  protected abstract parse(text: string): FileGallery | Promise<FileGallery>;

  /**
   * Loads the first version (or, when there is none and `create` is given, stores that empty gallery), and
   * checks it against the embedder the store is for. For subclasses' `open`.
   */
  protected async initialise(create: (() => FileGallery) | false | undefined): Promise<void> {
    const found = await this.#readOrUndefined();
    if (found) {
      await this.#adopt(found);
    } else if (create) {
      await this.exclusive(async () => {
        // Created under the lock, unless another process created it meanwhile.
        const again = await this.#readOrUndefined();
        if (again) return this.#adopt(again);
        const gallery = create();
        try {
          this.#version = await this.write(gallery.serialise(), undefined);
          this.#created = true;
        } catch (error) {
          // Another process created it between the read and the write (a store without a lock, as S3):
          // its gallery is used, as if it had been there first.
          const created = GalleryWriteConflictError.isInstance(error) && (await this.#readOrUndefined());
          if (!created) throw error;
          return this.#adopt(created);
        }
        this.#gallery = gallery;
      });
    } else {
      // `create` is false when the embedder was given and creating was not asked for.
      throw new GalleryStoreNotFoundError(
        this.location,
        create === false
          ? ' (open it with `create: true` to create it empty)'
          : '; to create it, give the embedder it is for (and `create: true`)',
      );
    }
    this.#expected ??= this.gallery.embedder;
    this.gallery.assertCompatible(this.#expected);
    this.#checkedAt = this.#now();
  }

  /** True when this handle's open created the store (see `GalleryStore.created`). */
  get created(): boolean {
    return this.#created;
  }

  /** The gallery as of the last read or write: an immutable {@link FileGallery}. */
  get gallery(): FileGallery {
    if (!this.#gallery) throw new Error(`${this.location}: the store was not initialised`);
    return this.#gallery;
  }

  /** The version of the gallery held (a file's identity, an ETag). */
  get version(): string | undefined {
    return this.#version;
  }

  get embedder(): GalleryEmbedderInfo {
    return this.gallery.embedder;
  }

  get metric(): DistanceMetric {
    return this.gallery.metric;
  }

  get aggregation(): IdentityAggregation {
    return this.gallery.aggregation;
  }

  get threshold(): number {
    return this.gallery.threshold;
  }

  get isCalibrated(): boolean {
    return this.gallery.isCalibrated;
  }

  get calibration(): GalleryCalibration | undefined {
    return this.gallery.calibration;
  }

  /**
   * Throws `EmbedderMismatchError` when the version held is not `embedder`'s; when it is, later versions must be
   * too: a store opened without an embedder (its first version's taken as the expected one, which may record no
   * weights hash) then refuses a version enrolled with other weights or another crop than `embedder`'s.
   */
  assertCompatible(embedder: GalleryEmbedderInfo): void {
    this.gallery.assertCompatible(embedder);
    const { modelId, dimension, preprocessing } = embedder;
    // Only ever stricter: an embedder that names no weights keeps the hash an earlier one gave.
    const weightsSha256 = embedder.weightsSha256 ?? this.#expected?.weightsSha256;
    this.#expected = { modelId, weightsSha256, dimension, preprocessing };
  }

  identities(): Promise<string[]> {
    return this.#calls.run(async () => {
      await this.#refreshIfDue();
      return this.gallery.identities();
    });
  }

  match(queries: readonly Float32Array[], options?: MatchOptions): Promise<GalleryMatch[]> {
    return this.#calls.run(async () => {
      await this.#refreshIfDue();
      return this.gallery.match(queries, options);
    });
  }

  /** The version held (after looking for a newer one, as a search does): it is immutable, so no copy is made. */
  snapshot(): Promise<FileGallery> {
    return this.#calls.run(async () => {
      await this.#refreshIfDue();
      return this.gallery;
    });
  }

  list(options: ListExamplesOptions = {}): Promise<StoredExample[]> {
    return this.#calls.run(async () => {
      await this.#refreshIfDue();
      return this.gallery.list(options);
    });
  }

  async listPage(options: ListPageOptions): Promise<ExamplePage> {
    checkPage(`${this.constructor.name}.listPage`, options);
    return this.#calls.run(async () => {
      await this.#refreshIfDue();
      return this.gallery.listPage(options);
    });
  }

  async add(identity: string, examples: readonly NewExample[]): Promise<AddedExample[]> {
    // Checked before any read, lock or upload, and named as the caller called it (not FileGallery's method).
    prepareExamples(`${this.constructor.name}.add`, identity, this.embedder.dimension, examples);
    return this.#mutate((g) => {
      const { gallery, added } = g.withExamples(identity, examples);
      return { gallery, result: added };
    });
  }

  removeExamples(ids: readonly string[]): Promise<void> {
    return this.#mutate(
      (g) => ({ gallery: ids.length ? g.withoutExamples(ids) : g, result: undefined }),
      ids.length ? prepareExampleIds : undefined,
    );
  }

  removeIdentity(identity: string): Promise<number> {
    return this.#mutate((g) => {
      if (!g.has(identity)) throw new UnknownIdentityError([identity], g.size);
      return { gallery: g.withoutIdentities([identity]), result: g.list({ identity }).length };
    });
  }

  /**
   * Sets the threshold (and the calibration that chose it, if any).
   * @throws InvalidOptionsError when `threshold` is not a finite number.
   */
  setThreshold(threshold: number, calibration?: GalleryCalibration): Promise<void> {
    return this.#mutate((g) => ({ gallery: g.withThreshold(threshold, calibration), result: undefined }));
  }

  /**
   * Looks for a new version now (whatever `reloadIntervalMs` says) and swaps it in; a version that cannot be
   * used is refused (reported to `onReloadError`) and the current gallery kept.
   */
  refresh(): Promise<RefreshOutcome> {
    return this.#calls.run(() => this.#refresh(false, true));
  }

  /**
   * Looks at the stored version now, as {@link SnapshotGalleryStore.refresh} does, and rejects with the error
   * when the store's server could not be reached (see `GalleryStore.checkReachable`). A version that is there
   * but cannot be used is no such failure: searches go on with the gallery held. While a look is already under
   * way it does not wait for it: it says what the last look found.
   */
  checkReachable(): Promise<void> {
    return this.#calls.run(async () => {
      // A look already under way (a large version being read, a silent server timing out) is not waited for:
      // what the last one found is said, so that a health check answers at once rather than after it.
      if (this.#refreshing) {
        if (this.#unreachable && this.#unreachableError) throw this.#unreachableError;
        return;
      }
      // The look this starts is waited for until the server answered, not while a new version it brought is
      // parsed (≈ 1 s at 100,000 examples): reached is all a health check asks.
      let answered = false;
      const reached = new Promise<void>((resolve) => {
        this.#onAnswered = () => {
          answered = true;
          resolve();
        };
      });
      const look = this.#refresh(false, true);
      look.catch(() => undefined);
      try {
        await Promise.race([look, reached]);
      } finally {
        this.#onAnswered = undefined;
      }
      if (answered) return;
      if (this.#unreachable && this.#unreachableError) throw this.#unreachableError;
    });
  }

  /**
   * Lets the calls already made finish (queued mutations included); every call after it rejects with
   * `DisposedError`. Subclasses then release what they hold.
   */
  async close(): Promise<void> {
    await this.#calls.close();
    // A look a search stopped waiting for (`refreshWaitMs`) ends before the subclass releases its client.
    await this.#refreshing?.catch(() => undefined);
  }

  async #readOrUndefined(): Promise<StoredGalleryText | undefined> {
    const stored = await this.read(undefined);
    return typeof stored === 'string' ? undefined : stored;
  }

  async #adopt(stored: StoredGalleryText): Promise<void> {
    this.#gallery = await this.parse(stored.text);
    this.#version = stored.version;
  }

  /**
   * The look a search makes when `reloadIntervalMs` passed, awaited for at most `refreshWaitMs` (a look that
   * takes longer ends in the background: `#refresh` handles its every outcome, so nothing is left unhandled).
   */
  async #refreshIfDue(): Promise<void> {
    if (this.#now() - this.#checkedAt < this.#options.reloadIntervalMs) return;
    // A look still under way was waited for by the search that started it, and a server known to be out of
    // reach is not waited for by every search (a silent one would add `refreshWaitMs` to each for as long as
    // it is down): these search the gallery held at once, the look going on in the background.
    const waitedFor = this.#refreshing !== undefined || this.#unreachable;
    const look = this.#refresh(false, false);
    const wait = this.#options.refreshWaitMs;
    if (wait === undefined) {
      await look;
      return;
    }
    if (waitedFor) {
      // Nobody awaits it: a rejection (an `onReloadError` that throws) must not go unhandled.
      look.catch(() => undefined);
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([look, new Promise((resolve) => (timer = setTimeout(resolve, wait)))]);
    clearTimeout(timer);
  }

  /**
   * Reads the stored gallery again when it changed. `force` (mutations): throw when the stored version cannot
   * be used (a mutation must not overwrite what it cannot read with the older gallery it holds). Otherwise,
   * only when `reloadIntervalMs` passed (or `now`), reporting an unusable version once and keeping the gallery.
   */
  async #refresh(force: boolean, now: boolean): Promise<RefreshOutcome> {
    if (!force && !now && this.#now() - this.#checkedAt < this.#options.reloadIntervalMs) return 'unchanged';
    if (this.#refreshing) {
      const outcome = await this.#refreshing.catch(() => 'refused' as const);
      if (!force && !now) return outcome;
    }
    const attempt = this.#reload(force);
    this.#refreshing = attempt;
    try {
      const outcome = await attempt;
      if (this.#unreachable) {
        this.#unreachable = false;
        this.reachable();
      }
      return outcome;
    } catch (error) {
      if (force) throw error;
      // A server out of reach is reported once, until it answers again (not at every look).
      const unreachable = FacerecError.isInstance(error) && error.code === 'GALLERY_UNREACHABLE';
      if (!(unreachable && this.#unreachable)) this.refused(error as Error);
      this.#unreachable = unreachable;
      this.#unreachableError = unreachable ? (error as Error) : undefined;
      return 'refused';
    } finally {
      if (this.#refreshing === attempt) this.#refreshing = undefined;
    }
  }

  async #reload(force: boolean): Promise<RefreshOutcome> {
    this.#checkedAt = this.#now();
    const held = this.#version;
    const stored = await this.read(held);
    this.#onAnswered?.();
    if (stored === 'unchanged') return 'unchanged';
    if (stored === 'missing') {
      // Reported once (not at every look) until something is stored again.
      if (!force && this.#refused === MISSING) return 'refused';
      this.#refused = MISSING;
      throw new GalleryStoreNotFoundError(this.location, ' (it was removed)');
    }
    if (!force && stored.version === this.#refused) return 'refused';
    try {
      const gallery = await this.parse(stored.text);
      if (this.#expected) gallery.assertCompatible(this.#expected);
      // This process's own change, written while the version was read and parsed, is newer than it: kept.
      if (this.#version !== held) return 'unchanged';
      const previous = this.#version;
      const previousGallery = this.#gallery;
      this.#gallery = gallery;
      this.#version = stored.version;
      if (!force) this.swapped(previous, previousGallery);
      return 'updated';
    } catch (error) {
      this.#refused = stored.version;
      throw error;
    }
  }

  /**
   * Runs one mutation: queued behind this process's others, inside `exclusive`, on the stored version; the new
   * gallery is written before it replaces the one in memory. On a write conflict it starts again from the new
   * stored version.
   */
  #mutate<T>(
    change: (gallery: FileGallery) => { gallery: FileGallery; result: T },
    /** Work on the gallery held that may wait (the event loop running meanwhile) before `change` runs on it. */
    prepare?: (gallery: FileGallery) => Promise<void>,
  ): Promise<T> {
    const run = () =>
      this.exclusive(async () => {
        for (let attempt = 0; ; attempt++) {
          await this.#refresh(true, true);
          await prepare?.(this.gallery);
          const { gallery, result } = change(this.gallery);
          if (gallery === this.gallery) return result;
          try {
            this.#version = await this.write(gallery.serialise(this.location), this.#version);
          } catch (error) {
            if (!GalleryWriteConflictError.isInstance(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
            await new Promise((resolve) => setTimeout(resolve, conflictPauseMs(attempt)));
            continue;
          }
          this.#gallery = gallery;
          return result;
        }
      });
    // A promise chain is the whole queue: each mutation starts when the previous one settled.
    return this.#calls.run(() => {
      const next = this.#queue.then(run, run);
      this.#queue = next.catch(() => undefined);
      return next;
    });
  }
}

/** What a store says of a version swapped in: its identity count, metric and threshold, and what changed. */
export interface GalleryReloadDetails {
  readonly identities: number;
  readonly metric: DistanceMetric;
  readonly threshold: number;
  /**
   * How it matches differently from the version it replaced (`metric euclidean → cosine, threshold 0.6 → 0.45`),
   * when it does: answers change with it.
   */
  readonly changed?: string;
}

/** {@link GalleryReloadDetails} of `gallery`, swapped in for `previous`. */
export function swapDetails(
  gallery: Pick<FileGallery, 'size' | 'metric' | 'threshold'>,
  previous: Pick<FileGallery, 'metric' | 'threshold'> | undefined,
): GalleryReloadDetails {
  const { size: identities, metric, threshold } = gallery;
  // 0 is a gallery never calibrated, matched at its embedder's recommended threshold.
  const shown = (t: number) => (t === 0 ? 'none (never calibrated)' : String(t));
  const changes = previous
    ? [
        previous.metric === metric ? undefined : `metric ${previous.metric} → ${metric}`,
        previous.threshold === threshold
          ? undefined
          : `threshold ${shown(previous.threshold)} → ${shown(threshold)}`,
      ].filter((c) => c !== undefined)
    : [];
  return { identities, metric, threshold, ...(changes.length ? { changed: changes.join(', ') } : {}) };
}

/**
 * Logs a version swapped in (`gallery updated`, with `fields` such as its location), and warns when it matches
 * differently (`gallery now matches differently`), since answers change with it.
 */
export function logGallerySwap(
  logger: GalleryStoreLogger,
  fields: Record<string, unknown>,
  { changed, ...details }: GalleryReloadDetails,
): void {
  logger.info('gallery updated', { ...fields, ...details });
  if (changed) {
    logger.warn('gallery now matches differently', {
      location: fields.location,
      changed,
      ...(/threshold/.test(changed)
        ? {
            note: 'where a threshold is set for the server or function (--threshold, FACEREC_THRESHOLD), that one applies',
          }
        : {}),
    });
  }
}
