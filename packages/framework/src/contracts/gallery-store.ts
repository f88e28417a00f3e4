import type { FileGallery } from '../gallery/gallery.js';
import type { GalleryCalibration } from '../gallery/types.js';
import type { Gallery } from './gallery.js';

/** One example as a store holds it: an embedding of an identity, under the id the store gave it. */
export interface StoredExample {
  /**
   * The example's id: a hash of the identity and the normalised embedding (see `exampleId`), so the same
   * example has the same id in every store and adding it twice is a no-op.
   */
  readonly id: string;
  readonly identity: string;
  /** Where the embedding came from (a file name, an upload id); may be empty. */
  readonly source: string;
}

/** An example as {@link GalleryStore.add} resolves to it: as stored, and whether this call stored it. */
export interface AddedExample extends StoredExample {
  /**
   * True when this call stored the example; false when the store held it already (added before, or by another
   * process at the same moment: of two concurrent adds of one example, one says true). Optional for stores
   * written before it; the built-in ones set it.
   */
  readonly added?: boolean;
}

/** An example to add: any finite, non-zero vector of the store's dimension (normalised on the way in). */
export interface NewExample {
  readonly embedding: ArrayLike<number>;
  /** Default `''`. */
  readonly source?: string;
}

/** Options of {@link GalleryStore.list}. */
export interface ListExamplesOptions {
  /** Only this identity's examples. */
  readonly identity?: string;
}

/** Options of {@link GalleryStore.listPage}: one page of what `list` with the same `identity` gives. */
export interface ListPageOptions extends ListExamplesOptions {
  /** How many examples of that order to skip (≥ 0). */
  readonly offset: number;
  /** The most examples to return (≥ 1). */
  readonly limit: number;
}

/** One page of a store's examples, and how many `list` would give in all. */
export interface ExamplePage {
  readonly examples: StoredExample[];
  readonly total: number;
}

/**
 * A {@link Gallery} that changes at run time: a collection of identities and their examples that can be added
 * to and removed from without rebuilding anything (a file rewritten atomically, a database table, an object in
 * a bucket). Every mutation is atomic: it happens whole or not at all, and a concurrent `match` sees the
 * collection before it or after it, never half of it.
 *
 * A store records the embedder it was created for (model id, weights sha256, dimension, preprocessing) and
 * refuses another: opening it for another embedder, or {@link Gallery.assertCompatible} with one, throws
 * `EmbedderMismatchError`. `add` takes embeddings, so it checks only their dimension; adding from photos
 * (`addFacesFromPhotos`) checks the embedder first.
 *
 * Every store passes `describeGalleryStoreConformance` (`@facerec/framework/testing`).
 */
export interface GalleryStore extends Gallery {
  /** Where the store lives, for messages and logs (a path, or a URL without credentials). */
  readonly location: string;
  /**
   * True when opening this handle created the store (`create`), false when it was there, or another process
   * created it first (its settings then stand, not this open's metric or threshold). Optional for stores
   * written before it; the built-in ones set it.
   */
  readonly created?: boolean | undefined;
  /**
   * Adds examples of `identity`, creating the identity when it is new; all of them or none. An example the
   * identity already holds (same id) is not added twice. Resolves to the stored examples, in order, each
   * saying whether this call added it ({@link AddedExample.added}).
   *
   * @throws InvalidInputError for an embedding of another dimension, or zero / non-finite (nothing is added).
   * @throws InvalidOptionsError for an empty or reserved (`'unknown'`) identity name, or no examples.
   */
  add(identity: string, examples: readonly NewExample[]): Promise<AddedExample[]>;
  /**
   * Removes examples by id, all or none; an identity left without examples is removed.
   * @throws UnknownExampleError naming the ids the store does not hold (nothing is removed).
   */
  removeExamples(ids: readonly string[]): Promise<void>;
  /**
   * Removes an identity and all its examples; resolves to the number of examples removed.
   * @throws UnknownIdentityError when the store has no such identity.
   */
  removeIdentity(identity: string): Promise<number>;
  /**
   * Sets the threshold matching applies (and the calibration that chose it), for every reader of the store.
   * Optional for stores written before it; the built-in ones have it (`facerec gallery calibrate` needs it).
   * @throws InvalidOptionsError when `threshold` is not a finite number ≥ 0.
   */
  setThreshold?(threshold: number, calibration?: GalleryCalibration): Promise<void>;
  /** The stored examples, by identity (code-unit order), then in the order they were added. */
  list(options?: ListExamplesOptions): Promise<StoredExample[]>;
  /**
   * `list(options)` from `offset`, at most `limit` examples, with the number `list` would give in all, read
   * without listing every example (a database's `LIMIT`/`OFFSET`): what paging through a large store needs
   * (`facerec serve`'s collections API). Optional for stores written before it, which are paged through
   * `list`; the built-in ones have it.
   */
  listPage?(options: ListPageOptions): Promise<ExamplePage>;
  /**
   * The store as it is now, whole, as an in-memory {@link FileGallery}: every example with its embedding, and the
   * store's metric, aggregation, threshold and calibration. What threshold calibration works on
   * (`calibrateThresholdLeaveOneOut`, `facerec gallery calibrate --gallery <store>`) and what `facerec gallery
   * copy` copies. Optional; the built-in stores have it (a file or S3 store gives the version it holds, looking
   * for a newer one first as a search would).
   */
  snapshot?(): Promise<FileGallery>;
  /**
   * Resolves when the store's server answered a cheap read just now (a file's `stat`, a conditional `GET` of
   * the object, the collection's row), rejects with its error otherwise (`GALLERY_UNREACHABLE` when it cannot
   * be reached). For health checks: `facerec serve`'s `GET /health` says 503 while it rejects. A snapshot store
   * (file, S3) adopts a newer stored version on the way, as a search would. Optional for stores written before
   * it; the built-in ones have it.
   */
  checkReachable?(): Promise<void>;
  /**
   * Lets the calls made before it finish, then releases what the store holds (connections, timers); every call
   * after it rejects with `DisposedError` (the conformance suite checks both).
   */
  close(): Promise<void>;
}
