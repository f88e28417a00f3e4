import { z } from 'zod';
import type {
  DistanceMetric,
  Gallery,
  GalleryEmbedderInfo,
  GalleryMatch,
  IdentityAggregation,
  IdentityCandidate,
  MatchOptions,
} from '../contracts/gallery.js';
import type {
  AddedExample,
  ExamplePage,
  ListExamplesOptions,
  ListPageOptions,
  NewExample,
  StoredExample,
} from '../contracts/gallery-store.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { FacerecError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import { readFileUpTo, writeFileAtomic } from '../fs.js';
import { parseOptions } from '../options.js';
import {
  checkIdentityName,
  checkPage,
  exampleId,
  type PreparedExample,
  prepareExamples,
} from './collection.js';
import { assertEmbedderCompatible } from './compatibility.js';
import { GalleryStoreNotFoundError, UnknownExampleError, UnknownIdentityError } from './errors.js';
import {
  aggregationSchema,
  calibrationSchema,
  checkThresholdSetting,
  embedderPreprocessingSchema,
  galleryTooLarge,
  MAX_GALLERY_FILE_BYTES,
  metricSchema,
  parseGalleryText,
  parseGalleryTextInSlices,
  serialiseGallery,
  thresholdSchema,
  UNKNOWN_IDENTITY,
} from './format.js';
import { createDotIndex, type DotIndex, type DotKernelName, MAX_QUERIES_PER_PASS } from './kernel.js';
import type {
  GalleryCalibration,
  GalleryData,
  GalleryExample,
  GallerySettings,
  ResolvedGalleryData,
} from './types.js';
import { distanceFromDot, normaliseInto } from './vectors.js';

/**
 * Computes `gallery`'s example ids (unless known already) a slice of about {@link ID_SLICE_MS} at a time, letting
 * the event loop run between slices: a removal by id from a large gallery just loaded would otherwise hold it for
 * the hashing of every example (≈ 1 s at 100,000 × 512). Package-internal; set in `FileGallery`'s static block,
 * which may read its private store.
 */
let prepareExampleIds!: (gallery: FileGallery) => Promise<void>;

export { prepareExampleIds };

const ID_SLICE_MS = 10;

/** Hashes `store`'s example ids, one identity per step, and sets `store.ids` when done (unless set meanwhile). */
function* hashIds(store: Store): Generator<void> {
  if (store.ids) return;
  const { names, rowStart, example } = store;
  const ids: string[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) ids.push(exampleId(names[i]!, example(r)));
    yield;
  }
  store.ids ??= ids;
}

/** Options that tune how a gallery searches, not what it holds. */
export interface GallerySearchOptions {
  /**
   * Dot-product kernel: `auto` (default) uses WebAssembly SIMD where available, else plain JS; `wasm` or `js`
   * force one (tests, benchmarks).
   */
  readonly kernel?: DotKernelName | 'auto';
}

const createSchema = z.strictObject({
  // Not strict: an embedder object may carry more than the gallery records; only the known fields are kept.
  embedder: z.object({
    modelId: z.string().min(1),
    weightsSha256: z.string().min(1).optional(),
    dimension: z.number().int().positive(),
    preprocessing: embedderPreprocessingSchema,
  }),
  metric: metricSchema.default('euclidean'),
  aggregation: aggregationSchema.default('nearest'),
  threshold: thresholdSchema.default(0),
  calibration: calibrationSchema.optional(),
  createdAt: z.iso.datetime({ offset: true }).optional(),
  // Records, not options: extra fields on them are ignored.
  identities: z.array(
    z.object({
      name: z.string().min(1),
      examples: z.array(z.object({ source: z.string(), embedding: z.any() })).min(1),
    }),
  ),
});

const searchSchema = z.strictObject({ kernel: z.enum(['auto', 'wasm', 'js']).optional() });

/** The immutable search structures, shared by galleries that differ only in threshold or calibration. */
interface Store {
  readonly names: readonly string[];
  /**
   * Example row `r` (grouped by identity in `names` order), as a read-only view. With `nearest` aggregation the
   * examples are the searched rows, so this reads them from the index rather than keeping a second copy.
   */
  readonly example: (r: number) => Float32Array;
  /** Copies example rows `from` to `to − 1` into `into` from `offset`, back to back. */
  readonly copyExamples: (from: number, to: number, into: Float32Array, offset: number) => void;
  readonly sources: readonly string[];
  /** First example row of identity `i` is `rowStart[i]`; its last is `rowStart[i + 1] − 1`. */
  readonly rowStart: Int32Array;
  /** The rows searched: the examples (`nearest`) or one re-normalised centroid per identity (`centroid`). */
  readonly index: DotIndex;
  /** Identity of each searched row. */
  readonly rowIdentity: Int32Array;
  /** Example ids by row, filled in on first use (see `FileGallery.list`). */
  ids?: readonly string[];
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts in place by name, skipping the sort when already in order (files are written sorted). */
function sortedByName<T extends { readonly name: string }>(items: T[]): T[] {
  for (let i = 1; i < items.length; i++) {
    if (items[i - 1]!.name > items[i]!.name) return items.sort((a, b) => byCodeUnit(a.name, b.name));
  }
  return items;
}

/**
 * A gallery file's text, refused (`GalleryFormatError`) before it is read when it is beyond
 * {@link MAX_GALLERY_FILE_BYTES}; one this process may not read is a `FacerecError` of code
 * `GALLERY_ACCESS_DENIED` (as an S3 store's refusal is). Other file-system errors propagate as they are
 * (ENOENT, EISDIR).
 */
export async function readGalleryFile(file: string): Promise<string> {
  // A pipe or a device (`--gallery <(…)`) has no size: read up to the limit and no further.
  const bytes = await readFileUpTo(file, MAX_GALLERY_FILE_BYTES, (size) => galleryTooLarge(size, file)).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EACCES' && error.code !== 'EPERM') throw error;
      throw new FacerecError(
        'GALLERY_ACCESS_DENIED',
        `${file}: permission denied: gallery files are readable by their owner only (written 0600, they hold biometric data); read it as that user, or let a group read it (chmod g+r, kept through rewrites)`,
        { cause: error },
      );
    },
  );
  return bytes.toString('utf8');
}

/**
 * Permissions of a gallery file a write creates: its owner's only (`0o600`). A gallery holds biometric
 * templates of the people in it, personal data that other accounts on the machine need not read. Grant
 * more with `chmod` (a service account's group, say): a rewrite keeps the file's permissions.
 */
export const GALLERY_FILE_MODE = 0o600;

/**
 * An in-memory {@link Gallery} of enrolled identities that reads and writes the gallery file format.
 * Immutable: `withoutIdentities`, `withThreshold` and calibration return new galleries.
 *
 * Matching is exact nearest-neighbour search over L2-normalised embeddings held in one contiguous float32
 * matrix, scored with a WebAssembly SIMD dot-product kernel (see `kernel.ts`); Euclidean distance is derived
 * as `sqrt(max(0, 2 − 2·dot))` and cosine distance as `1 − dot`. With `aggregation: 'nearest'` an identity's
 * distance is that of its closest example; with `'centroid'`, that of the mean of its examples, re-normalised.
 *
 * @example
 * const gallery = await FileGallery.load('team.gallery.json');
 * gallery.assertCompatible(embedder); // refuses another model's embeddings
 * const [match] = await gallery.match(await embedder.embed([crop]), { topK: 3 });
 * match.identity; // 'alice', or 'unknown' when match.distance > gallery.threshold
 */
export class FileGallery implements Gallery {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly embedder: GalleryEmbedderInfo;
  readonly metric: DistanceMetric;
  readonly aggregation: IdentityAggregation;
  readonly threshold: number;
  /** How the threshold was calibrated; `undefined` for an uncalibrated gallery. */
  readonly calibration: GalleryCalibration | undefined;
  /** ISO 8601 date the gallery was first created (kept by `with…` copies and by save/load). */
  readonly createdAt: string;
  readonly #store: Store;

  private constructor(settings: GallerySettings, store: Store) {
    this.embedder = settings.embedder;
    this.metric = settings.metric;
    this.aggregation = settings.aggregation;
    this.threshold = settings.threshold;
    this.calibration = settings.calibration;
    this.createdAt = settings.createdAt;
    this.#store = store;
  }

  /**
   * Builds a gallery from embeddings. Every embedding is L2-normalised (copied; the caller's arrays are not
   * kept). Identities are sorted by name (code-unit order); examples keep their order.
   *
   * @throws {@link InvalidOptionsError} for unknown keys, bad metric/aggregation/threshold, a reserved
   *   (`'unknown'`) or duplicate identity name, or an identity without examples.
   * @throws {@link InvalidInputError} for an embedding of the wrong length, or zero/non-finite.
   */
  static create(data: GalleryData, options: GallerySearchOptions = {}): FileGallery {
    const parsed = { data: parseOptions(createSchema, data, 'FileGallery.create') };
    const kernel = resolveSearch(options);
    const d = parsed.data;
    const names = new Set<string>();
    for (const { name } of d.identities) {
      // The stores' name rules (a new gallery: no legacy names to keep), the reserved 'unknown' included.
      checkIdentityName('FileGallery.create', name);
      if (names.has(name))
        throw new InvalidOptionsError('FileGallery.create', `duplicate identity "${name}"`);
      names.add(name);
    }
    const settings: GallerySettings = {
      embedder: { ...d.embedder, weightsSha256: d.embedder.weightsSha256 },
      metric: d.metric,
      aggregation: d.aggregation,
      threshold: d.threshold,
      calibration: d.calibration,
      createdAt: d.createdAt ?? new Date().toISOString(),
    };
    const dim = settings.embedder.dimension;
    return FileGallery.#build(settings, [...data.identities], kernel, (example, into, offset, where) => {
      const v = example.embedding;
      if (v === null || typeof v !== 'object' || typeof v.length !== 'number') {
        throw new InvalidInputError(`FileGallery.create: ${where()}: embedding is not an array of numbers`);
      }
      if (v.length !== dim) {
        throw new InvalidInputError(
          `FileGallery.create: ${where()}: embedding has ${v.length} values; the embedder's dimension is ${dim}`,
        );
      }
      if (!normaliseInto(v, into, offset)) {
        throw new InvalidInputError(`FileGallery.create: ${where()}: embedding is zero or not finite`);
      }
    });
  }

  /**
   * Reads a gallery file.
   *
   * @throws {@link GalleryStoreNotFoundError} when there is no such file.
   * @throws {@link GalleryFormatError} when the file is not a valid gallery (the message names the file and
   *   each problem with its JSON path). Other file-system errors (permissions, a folder) propagate as they are.
   */
  static async load(file: string, options: GallerySearchOptions = {}): Promise<FileGallery> {
    let text: string;
    try {
      text = await readGalleryFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new GalleryStoreNotFoundError(file);
      if ((error as NodeJS.ErrnoException).code === 'EISDIR') {
        throw new InvalidOptionsError(
          'FileGallery.load',
          `${file} is a folder, not a gallery file; name a file in it`,
        );
      }
      throw error;
    }
    return FileGallery.parse(text, { ...options, source: file });
  }

  /** Parses the text of a gallery file. @throws {@link GalleryFormatError} */
  static parse(text: string, options: GallerySearchOptions & { source?: string } = {}): FileGallery {
    const { source, ...search } = options;
    return FileGallery.#fromData(parseGalleryText(text, source), search);
  }

  /**
   * {@link FileGallery.parse} a slice of about 10 ms at a time, the event loop running between slices: for a
   * server that reloads a large gallery while it answers (at 100,000 × 128, `parse` holds the event loop ≈ 0.6 s;
   * this, about the time of the one `JSON.parse` call, ≈ 0.1 s). @throws {@link GalleryFormatError}
   */
  static async parseInSlices(
    text: string,
    options: GallerySearchOptions & { source?: string } = {},
  ): Promise<FileGallery> {
    const { source, ...search } = options;
    return FileGallery.#fromData(await parseGalleryTextInSlices(text, source), search);
  }

  static #fromData(data: ResolvedGalleryData, options: GallerySearchOptions): FileGallery {
    const { identities, ...settings } = data;
    // Stored vectors are unit length already (checked on parse); keep their bits as stored.
    return FileGallery.#build(settings, [...identities], resolveSearch(options), (example, into, offset) => {
      into.set(example.embedding, offset);
    });
  }

  /**
   * The gallery of `identities` (sorted by name here; examples keep their order): `write` puts each example's
   * embedding into one contiguous matrix (checking it first, where it comes from a caller), then the search
   * structures are built over it. `where` names the example for error messages.
   */
  static #build<Example extends { readonly source: string }>(
    settings: GallerySettings,
    identities: { readonly name: string; readonly examples: readonly Example[] }[],
    kernel: DotKernelName | 'auto',
    write: (example: Example, into: Float32Array, offset: number, where: () => string) => void,
  ): FileGallery {
    const dim = settings.embedder.dimension;
    const sorted = sortedByName(identities);
    const rows = sorted.reduce((n, i) => n + i.examples.length, 0);
    const examples = new Float32Array(rows * dim);
    const sources: string[] = [];
    const rowStart = new Int32Array(sorted.length + 1);
    let row = 0;
    sorted.forEach((identity, i) => {
      rowStart[i] = row;
      identity.examples.forEach((example, j) => {
        write(
          example,
          examples,
          row * dim,
          () => `identity "${identity.name}" example ${j} (${example.source})`,
        );
        sources.push(example.source);
        row++;
      });
    });
    rowStart[sorted.length] = row;
    const names = sorted.map((i) => i.name);
    return new FileGallery(settings, buildStore(names, examples, sources, rowStart, settings, kernel));
  }

  /**
   * The file content, as pieces of text (see {@link FileGallery.save}); `destination`, where it goes, is named by
   * the refusal of a file beyond the size limit.
   */
  serialise(destination?: string): Generator<string> {
    return serialiseGallery(this.#data(), undefined, destination);
  }

  /** The file content as one string. */
  toText(): string {
    return [...this.serialise()].join('');
  }

  /**
   * Writes the gallery file atomically and durably (see {@link writeFileAtomic}): readers never see a partial
   * file, and a crash leaves the old file or the complete new one. A new file is readable by its owner only
   * ({@link GALLERY_FILE_MODE}); a file replaced keeps its permissions.
   */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.serialise(file), { mode: GALLERY_FILE_MODE });
  }

  /** Enrolled identity names, sorted by code unit (the {@link Gallery} contract's async form of {@link names}). */
  async identities(): Promise<string[]> {
    return [...this.#store.names];
  }

  /** Enrolled identity names, sorted by code unit: this in-memory gallery can answer synchronously. */
  get names(): readonly string[] {
    return this.#store.names;
  }

  /** Number of identities. */
  get size(): number {
    return this.#store.names.length;
  }

  /** Number of enrolled examples over all identities. */
  get exampleCount(): number {
    return this.#store.sources.length;
  }

  /** Which dot-product kernel this gallery searches with. */
  get kernel(): DotKernelName {
    return this.#store.index.kernel;
  }

  /** Whether the threshold came from a calibration. */
  get isCalibrated(): boolean {
    return this.calibration !== undefined;
  }

  /** True when the gallery holds `identity`. */
  has(identity: string): boolean {
    return this.#indexOf(identity) >= 0;
  }

  /**
   * The examples of `identity` (normalised copies), in enrollment order.
   * @throws {@link UnknownIdentityError} when the gallery has no such identity.
   */
  examples(identity: string): GalleryExample[] {
    const i = this.#indexOf(identity);
    if (i < 0) throw new UnknownIdentityError([identity], this.size);
    const { rowStart, example, sources } = this.#store;
    const out: GalleryExample[] = [];
    for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) {
      out.push({ source: sources[r]!, embedding: example(r).slice() });
    }
    return out;
  }

  /**
   * Refuses to match embeddings from any embedder but the one the gallery was enrolled with: a different
   * model id, different weights (when both sides know their sha256), another dimension, or another input
   * (crop size, channel order, mean/std; the tensor layout may differ, as it does between runtimes of the
   * same model).
   *
   * @throws {@link EmbedderMismatchError} naming both models.
   */
  assertCompatible(embedder: GalleryEmbedderInfo): void {
    assertEmbedderCompatible(this.embedder, embedder);
  }

  /**
   * The best identity for each query, with the `topK` nearest identities as candidates. A query whose best
   * distance is above the threshold is `'unknown'` (its distance and candidates are still given). An empty
   * gallery answers `'unknown'` at distance `Infinity` with no candidates.
   *
   * Queries are L2-normalised before matching; up to 3 go through one pass over the gallery, so batches cost
   * less per query than single calls.
   *
   * @throws {@link InvalidInputError} for a query of another dimension, or zero/non-finite.
   * @throws {@link InvalidOptionsError} for a `topK` that is not a positive integer, a threshold that is not a
   *   finite number, or unknown option keys.
   */
  async match(queries: readonly Float32Array[], options: MatchOptions = {}): Promise<GalleryMatch[]> {
    const { topK, threshold } = resolveMatchOptions(options, this.threshold);
    const best = this.#bestDots(queries);
    const m = this.size;
    const k = Math.min(topK, m);
    return queries.map((_, q) => {
      const top = topIdentities(best, q * m, m, k);
      const candidates: IdentityCandidate[] = top.map((i) => ({
        identity: this.#store.names[i]!,
        distance: distanceFromDot(this.metric, best[q * m + i]!),
      }));
      return matchOf(candidates, threshold);
    });
  }

  /**
   * Each query's (aggregated) distance to every identity, in {@link FileGallery.identities} order. This is
   * what calibration needs; `match` is the same computation followed by a top-k selection.
   *
   * @throws {@link InvalidInputError} for a query of another dimension, or zero/non-finite.
   */
  distancesTo(queries: readonly Float32Array[]): Float64Array[] {
    const best = this.#bestDots(queries);
    const m = this.size;
    return queries.map((_, q) => {
      const out = new Float64Array(m);
      for (let i = 0; i < m; i++) out[i] = distanceFromDot(this.metric, best[q * m + i]!);
      return out;
    });
  }

  /**
   * A copy without `identities`. The threshold and calibration are kept: removing identities changes no
   * remaining distance, though the calibration data included the removed ones.
   *
   * @throws {@link UnknownIdentityError} naming any identity the gallery does not hold.
   */
  withoutIdentities(identities: readonly string[]): FileGallery {
    const missing = identities.filter((name) => !this.has(name));
    if (missing.length) throw new UnknownIdentityError(missing, this.size);
    const drop = new Set(identities);
    const { names } = this.#store;
    return this.#spliced((_, i) => !drop.has(names[i]!));
  }

  /**
   * The examples with their ids (see {@link exampleId}), by identity then in enrollment order; only
   * `identity`'s with that option (none when the gallery does not hold it).
   */
  list(options: ListExamplesOptions = {}): StoredExample[] {
    const { names, rowStart, sources } = this.#store;
    const out: StoredExample[] = [];
    const only = options.identity === undefined ? -1 : this.#indexOf(options.identity);
    if (options.identity !== undefined && only < 0) return out;
    if (only < 0) this.#exampleIds();
    const [from, to] = only < 0 ? [0, names.length] : [only, only + 1];
    for (let i = from; i < to; i++) {
      for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) {
        out.push({ id: this.#idAt(r, i), identity: names[i]!, source: sources[r]! });
      }
    }
    return out;
  }

  /** `list(options)` from `offset`, at most `limit` examples, with its length: only the page is built. */
  listPage(options: ListPageOptions): ExamplePage {
    checkPage('FileGallery.listPage', options);
    const { names, rowStart, sources } = this.#store;
    const only = options.identity === undefined ? -1 : this.#indexOf(options.identity);
    if (options.identity !== undefined && only < 0) return { examples: [], total: 0 };
    // The examples of `list`'s order are rows first to end, contiguous: one identity's, or every one's.
    const [first, end] = only < 0 ? [0, rowStart[names.length]!] : [rowStart[only]!, rowStart[only + 1]!];
    const from = Math.min(end, first + options.offset);
    const to = Math.min(end, from + options.limit);
    // The identity of row `from`: the last whose first row is at or before it (every identity has a row). Not
    // `rowIdentity`, which maps searched rows: centroids, under `centroid` aggregation.
    let i = Math.max(0, only);
    for (let hi = only < 0 ? names.length - 1 : only; i < hi; ) {
      const mid = (i + hi + 1) >> 1;
      if (rowStart[mid]! <= from) i = mid;
      else hi = mid - 1;
    }
    const examples: StoredExample[] = [];
    for (let r = from; r < to; r++) {
      while (r >= rowStart[i + 1]!) i++;
      examples.push({ id: this.#idAt(r, i), identity: names[i]!, source: sources[r]! });
    }
    return { examples, total: end - first };
  }

  /**
   * A copy with `examples` added to `identity` (created when new), each normalised; an example the identity
   * already holds (same id) is not added again. The threshold and calibration are kept. `added` lists the
   * stored examples in the order given (those already there included).
   *
   * @throws {@link InvalidOptionsError} for a bad identity name or no examples.
   * @throws {@link InvalidInputError} for an embedding of another dimension, zero or not finite.
   */
  withExamples(
    identity: string,
    examples: readonly NewExample[],
  ): { readonly gallery: FileGallery; readonly added: AddedExample[] } {
    const prepared = prepareExamples('FileGallery.withExamples', identity, this.embedder.dimension, examples);
    const known = new Map(this.has(identity) ? this.list({ identity }).map((e) => [e.id, e]) : []);
    // Held under its id, or under the id an earlier version gave it (a photo it stored, added again).
    const heldAs = (e: PreparedExample) =>
      known.get(e.id) ?? (e.legacyId ? known.get(e.legacyId) : undefined);
    const fresh = prepared.filter((e) => !heldAs(e));
    // An example already held keeps its source: the result is the examples as stored.
    const added = prepared.map((e): AddedExample => {
      const held = heldAs(e);
      return held ? { ...held, added: false } : { id: e.id, identity, source: e.source, added: true };
    });
    if (fresh.length === 0) return { gallery: this, added };
    return { gallery: this.#spliced(undefined, { identity, examples: fresh }), added };
  }

  /**
   * A copy without the examples of these ids; an identity left without examples is removed. The threshold
   * and calibration are kept.
   *
   * @throws {@link UnknownExampleError} naming the ids the gallery does not hold.
   */
  withoutExamples(ids: readonly string[]): FileGallery {
    const all = this.#exampleIds();
    const held = new Set(all);
    const missing = ids.filter((id) => !held.has(id));
    if (missing.length) throw new UnknownExampleError(missing);
    const drop = new Set(ids);
    return this.#spliced((r) => !drop.has(all[r]!));
  }

  /**
   * A copy holding the rows `keep` accepts (all without it), in order, and `add`'s examples (normalised, with
   * their ids) after its identity's rows; an identity left without rows is dropped, a new one takes its place in
   * name order. Rows are copied, not rebuilt from example objects, and the ids computed already carry over, so
   * a change to a large gallery costs one copy of its matrix rather than a rebuild and a hash of every example
   * (the event loop is held for all of it).
   */
  #spliced(
    keep: ((row: number, identity: number) => boolean) | undefined,
    add?: { readonly identity: string; readonly examples: readonly PreparedExample[] },
  ): FileGallery {
    const { names, rowStart, copyExamples, sources, ids } = this.#store;
    const dim = this.embedder.dimension;
    const m = names.length;
    const held = add ? this.#indexOf(add.identity) : -1;
    // A new identity goes before the first name after it (names are sorted by code unit).
    let before = -1;
    if (add && held < 0) {
      before = 0;
      while (before < m && byCodeUnit(names[before]!, add.identity) < 0) before++;
    }
    const matrix = new Float32Array((rowStart[m]! + (add?.examples.length ?? 0)) * dim);
    const keptNames: string[] = [];
    const keptSources: string[] = [];
    const keptIds: string[] | undefined = ids ? [] : undefined;
    const starts: number[] = [0];
    // Rows kept back to back are copied as one block: `run` is the first row not copied yet.
    let run = 0;
    const copyTo = (to: number) => {
      copyExamples(run, to, matrix, keptSources.length * dim);
      for (let r = run; r < to; r++) {
        keptSources.push(sources[r]!);
        keptIds?.push(ids![r]!);
      }
      run = to;
    };
    const putAdded = (at: number) => {
      copyTo(at);
      for (const e of add!.examples) {
        matrix.set(e.embedding, keptSources.length * dim);
        keptSources.push(e.source);
        keptIds?.push(e.id);
      }
    };
    let kept = 0;
    for (let i = 0; i <= m; i++) {
      if (i === before) {
        putAdded(rowStart[i]!);
        kept += add!.examples.length;
        keptNames.push(add!.identity);
        starts.push(kept);
      }
      if (i === m) break;
      const first = kept;
      for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) {
        if (!keep || keep(r, i)) {
          kept++;
        } else {
          copyTo(r);
          run = r + 1;
        }
      }
      if (i === held) {
        putAdded(rowStart[i + 1]!);
        kept += add!.examples.length;
      }
      if (kept > first) {
        keptNames.push(names[i]!);
        starts.push(kept);
      }
    }
    copyTo(rowStart[m]!);
    const store = buildStore(
      keptNames,
      matrix.subarray(0, keptSources.length * dim),
      keptSources,
      Int32Array.from(starts),
      this.#settings(),
      this.#store.index.kernel,
    );
    if (keptIds) store.ids = keptIds;
    return new FileGallery(this.#settings(), store);
  }

  /**
   * The id of row `r` (of identity `i`): from the ids computed already, else hashed on its own, so that one
   * identity's examples or one page of them (adding to a large gallery just loaded, paging it) hash no others.
   */
  #idAt(r: number, i: number): string {
    return this.#store.ids?.[r] ?? exampleId(this.#store.names[i]!, this.#store.example(r));
  }

  /** Example ids by row, computed once per store (hashing every embedding) and only when asked for. */
  #exampleIds(): readonly string[] {
    const store = this.#store;
    if (!store.ids) for (const _ of hashIds(store));
    return store.ids!;
  }

  static {
    prepareExampleIds = async (gallery) => {
      let since = performance.now();
      for (const _ of hashIds(gallery.#store)) {
        if (performance.now() - since < ID_SLICE_MS) continue;
        await new Promise((resolve) => setImmediate(resolve));
        since = performance.now();
      }
    };
  }

  /**
   * A copy with another threshold. Pass the calibration that produced it, or nothing to mark the copy as
   * uncalibrated (a hand-set threshold).
   *
   * @throws {@link InvalidOptionsError} when `threshold` is not a finite number.
   */
  withThreshold(threshold: number, calibration?: GalleryCalibration): FileGallery {
    checkThresholdSetting('FileGallery.withThreshold', threshold, calibration);
    return new FileGallery({ ...this.#settings(), threshold, calibration }, this.#store);
  }

  #settings(): GallerySettings {
    return {
      embedder: this.embedder,
      metric: this.metric,
      aggregation: this.aggregation,
      threshold: this.threshold,
      calibration: this.calibration,
      createdAt: this.createdAt,
    };
  }

  #data(): ResolvedGalleryData {
    const { names, rowStart, example, sources } = this.#store;
    // Views into the store, not copies: they are only read, one identity at a time, while writing the file.
    function* identities() {
      for (let i = 0; i < names.length; i++) {
        const rows: GalleryExample[] = [];
        for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) {
          rows.push({ source: sources[r]!, embedding: example(r) });
        }
        yield { name: names[i]!, examples: rows };
      }
    }
    return { ...this.#settings(), identities: identities() };
  }

  #indexOf(identity: string): number {
    // Names are sorted by code unit: binary search.
    const names = this.#store.names;
    let lo = 0;
    let hi = names.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = byCodeUnit(names[mid]!, identity);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** `best[q * size + i]`: the largest dot product of query `q` with identity `i`'s searched rows. */
  #bestDots(queries: readonly Float32Array[]): Float32Array {
    const dim = this.embedder.dimension;
    const m = this.size;
    const { index, rowIdentity } = this.#store;
    if (!Array.isArray(queries))
      throw new InvalidInputError('match: queries must be an array of Float32Array');
    const best = new Float32Array(queries.length * m).fill(Number.NEGATIVE_INFINITY);
    const batch = new Float32Array(MAX_QUERIES_PER_PASS * dim);
    for (let first = 0; first < queries.length; first += MAX_QUERIES_PER_PASS) {
      const count = Math.min(MAX_QUERIES_PER_PASS, queries.length - first);
      for (let k = 0; k < count; k++) {
        const q = queries[first + k];
        const where = queries.length > 1 ? `query ${first + k}` : 'query';
        if (!(q instanceof Float32Array))
          throw new InvalidInputError(`match: ${where} is not a Float32Array`);
        if (q.length !== dim) {
          throw new InvalidInputError(
            `match: ${where} has ${q.length} values; the gallery holds ${dim}-d embeddings of "${this.embedder.modelId}"`,
          );
        }
        if (!normaliseInto(q, batch, k * dim)) {
          throw new InvalidInputError(`match: ${where} is zero or has non-finite values`);
        }
      }
      index.scan(batch, count, (start, n, dots, stride) => {
        for (let r = 0; r < n; r++) {
          const identity = rowIdentity[start + r]!;
          for (let k = 0; k < count; k++) {
            const at = (first + k) * m + identity;
            const dot = dots[r * stride + k]!;
            if (dot > best[at]!) best[at] = dot;
          }
        }
      });
    }
    return best;
  }
}

function resolveSearch(options: GallerySearchOptions): DotKernelName | 'auto' {
  return parseOptions(searchSchema, options, 'FileGallery').kernel ?? 'auto';
}

/**
 * The answer for one query from its candidates (nearest first): the nearest identity, or `'unknown'` when it
 * is farther than `threshold` or there is none (distance `Infinity`). For every store's `match`. Threshold 0
 * (never calibrated) answers `'unknown'` even at distance 0: stores compute a face's distance to its own
 * embedding as 0 or as a rounding error above it, and would otherwise disagree.
 */
export function matchOf(candidates: IdentityCandidate[], threshold: number): GalleryMatch {
  const first = candidates[0];
  if (!first) return { identity: UNKNOWN_IDENTITY, distance: Number.POSITIVE_INFINITY, candidates };
  return {
    identity: threshold > 0 && first.distance <= threshold ? first.identity : UNKNOWN_IDENTITY,
    distance: first.distance,
    candidates,
  };
}

/**
 * Checks `match` options (only `topK` and `threshold`) and applies the defaults: `topK` 1, the gallery's
 * `threshold`. For every store's `match`.
 *
 * @throws {@link InvalidOptionsError} naming `component`.
 */
export function resolveMatchOptions(
  options: MatchOptions,
  threshold: number,
  component = 'FileGallery.match',
): { topK: number; threshold: number } {
  // Checked by hand rather than with zod: this runs on every match call.
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(component, 'options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (key !== 'topK' && key !== 'threshold') {
      throw new InvalidOptionsError(component, `unknown option "${key}"; valid: topK, threshold`);
    }
  }
  const topK = options.topK ?? 1;
  if (!Number.isSafeInteger(topK) || topK < 1) {
    throw new InvalidOptionsError(component, `topK must be a positive integer, got ${String(topK)}`);
  }
  const t = options.threshold ?? threshold;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
    throw new InvalidOptionsError(
      component,
      `threshold must be a finite number ≥ 0 (a distance), got ${String(t)}`,
    );
  }
  return { topK, threshold: t };
}

/**
 * Indices of the `k` largest values of `values[offset .. offset + n)`, largest first; ties go to the lower
 * index (the identity whose name sorts first), so results are deterministic.
 */
function topIdentities(values: Float32Array, offset: number, n: number, k: number): number[] {
  if (k === 0) return [];
  if (k > 64) {
    const all = Array.from({ length: n }, (_, i) => i);
    all.sort((a, b) => values[offset + b]! - values[offset + a]! || a - b);
    return all.slice(0, k);
  }
  // Insertion into a sorted buffer of k: O(n) when k is small, as it always is for matching.
  const top: number[] = [];
  let floor = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = values[offset + i]!;
    if (top.length === k && v <= floor) continue;
    let at = top.length;
    while (at > 0 && values[offset + top[at - 1]!]! < v) at--;
    top.splice(at, 0, i);
    if (top.length > k) top.pop();
    floor = values[offset + top[top.length - 1]!]!;
  }
  return top;
}

/**
 * Builds the searched matrix: the examples themselves, or one re-normalised centroid per identity. Takes
 * ownership of `examples` (freshly built by the caller).
 */
function buildStore(
  names: readonly string[],
  examples: Float32Array,
  sources: readonly string[],
  rowStart: Int32Array,
  settings: GallerySettings,
  kernel: DotKernelName | 'auto',
): Store {
  const dim = settings.embedder.dimension;
  const m = names.length;
  if (settings.aggregation === 'nearest') {
    const rowIdentity = new Int32Array(sources.length);
    for (let i = 0; i < m; i++) rowIdentity.fill(i, rowStart[i], rowStart[i + 1]);
    const index = createDotIndex(examples, sources.length, dim, kernel);
    return {
      names,
      example: (r) => index.rowView(r),
      copyExamples: (from, to, into, offset) => index.copyRows(from, to, into, offset),
      sources,
      rowStart,
      index,
      rowIdentity,
    };
  }
  const centroids = new Float32Array(m * dim);
  const sum = new Float64Array(dim);
  for (let i = 0; i < m; i++) {
    sum.fill(0);
    for (let r = rowStart[i]!; r < rowStart[i + 1]!; r++) {
      for (let j = 0; j < dim; j++) sum[j]! += examples[r * dim + j]!;
    }
    if (!normaliseInto(sum, centroids, i * dim)) {
      // Examples that cancel out exactly have no direction; no query can be near them.
      throw new InvalidInputError(`identity "${names[i]}": its examples sum to zero, so it has no centroid`);
    }
  }
  return {
    names,
    example: (r) => examples.subarray(r * dim, (r + 1) * dim),
    copyExamples: (from, to, into, offset) => into.set(examples.subarray(from * dim, to * dim), offset),
    sources,
    rowStart,
    index: createDotIndex(centroids, m, dim, kernel),
    rowIdentity: Int32Array.from({ length: m }, (_, i) => i),
  };
}
