import { createHash } from 'node:crypto';
import {
  type AddedExample,
  assertEmbedderCompatible,
  type DistanceMetric,
  distanceFromDot,
  EmbedderMismatchError,
  type ExamplePage,
  FacerecError,
  FileGallery,
  type GalleryCalibration,
  type GalleryEmbedderInfo,
  GalleryFormatError,
  type GalleryMatch,
  type GalleryStore,
  GalleryStoreNotFoundError,
  type IdentityCandidate,
  InvalidInputError,
  InvalidOptionsError,
  type ListExamplesOptions,
  type ListPageOptions,
  MAX_SOURCE_LENGTH,
  type MatchOptions,
  type NewExample,
  NO_FACE_RESULT,
  type OpenGalleryStoreOptions,
  parseOptions,
  SPECIFICATION_VERSION,
  type StoredExample,
  UNKNOWN_IDENTITY,
  UnknownExampleError,
  UnknownIdentityError,
} from '@facerec/framework';
import {
  CallGate,
  calibrationSchema,
  checkPage,
  checkThresholdSetting,
  embedderPreprocessingSchema,
  galleryUnreachable,
  matchOf,
  metricSchema,
  norm,
  normaliseInto,
  type PreparedExample,
  prepareExamples,
  resolveMatchOptions,
  storedTextIssue,
  thresholdSchema,
  unreachableCode,
  visibleText,
  zodIssues,
} from '@facerec/framework/internal';
import pg from 'pg';
import { z } from 'zod';
import { migrate, readMigrations } from './migrate.js';
import { inTransaction, isQueryTimeout } from './transaction.js';

/** pgvector's largest `hnsw.ef_search`. */
const MAX_EF_SEARCH = 1000;

/** How `match` searches: `exact` scans every example; `hnsw` walks the collection's HNSW index. */
export type PostgresSearchMode = 'exact' | 'hnsw';

/** Options of {@link PostgresGalleryStore.open}. */
export interface PostgresGalleryStoreOptions {
  /** `postgres://user:password@host:5432/database` (any libpq-style string `pg` takes). Or give `pool`. */
  readonly connectionString?: string;
  /** A pool you own (it is not ended by `close`). Or give `connectionString`. */
  readonly pool?: pg.Pool;
  /** The collection (one gallery) in the database. Default `default`. */
  readonly collection?: string;
  /**
   * The embedder the collection is for: an existing collection must have been created for it
   * (`EmbedderMismatchError` otherwise), and a missing one is created for it. Without it, the collection must
   * exist.
   */
  readonly embedder?: GalleryEmbedderInfo;
  /** Create the collection when it does not exist (needs `embedder`). Default true. */
  readonly create?: boolean;
  /** For a new collection. Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** For a new collection. Default 0 (uncalibrated). */
  readonly threshold?: number;
  /** Default `hnsw`; `exact` for exact search (a scan of the collection). */
  readonly search?: PostgresSearchMode;
  /**
   * HNSW's `ef_search`: candidates kept while walking the graph; higher is slower and closer to exact. Also the
   * number of nearest examples grouped into identities for `topK` (a `topK` above it walks `topK` examples, and one
   * above 1,000, pgvector's largest `ef_search`, scans the collection as `exact` does). Default 400 (pgvector's is 40): recall@1
   * against exact search, on uniformly random identities (`scripts/bench-gallery.ts`, the hard case for HNSW), was
   * 0.990 at 400 for 100,000 × 512-d (0.805 at 100), 0.995 already at 200 for 100,000 × 128-d, 1.000 at 40 for
   * 10,000.
   */
  readonly efSearch?: number;
  /** HNSW build parameters of a new collection's index. Defaults: pgvector's, `m` 16, `efConstruction` 64. */
  readonly hnsw?: { readonly m?: number; readonly efConstruction?: number };
  /** Apply the package's schema migrations first. Default true. */
  readonly migrate?: boolean;
  /** Pool size when the store makes its pool from `connectionString`. Default 10. */
  readonly maxConnections?: number;
  /**
   * How long one query may wait for the server's answer, in milliseconds, when the store makes its pool (a
   * `query_timeout` in the URL wins); past it the call fails as `GALLERY_UNREACHABLE` (a caller answers 503) and
   * the connection is dropped. Without it a server that stops answering (a frozen host, a network partition
   * that drops packets) held the call, and everything waiting behind it, for ever. Default 30 000; 0: none.
   */
  readonly queryTimeoutMs?: number;
  /**
   * How often `match` reads the collection's threshold and calibration again (another process may have
   * recalibrated it), in seconds; one primary-key read at most this often. 0: before every match. Default 1.
   * The examples need no refresh: every query sees the current collection.
   */
  readonly refreshSeconds?: number;
  /**
   * Told when the settings read again cannot be used (not valid, another embedder, the collection gone): the
   * store keeps the ones it has. Default: ignored (tried again after `refreshSeconds`).
   */
  readonly onReloadError?: (error: Error) => void;
  /**
   * Told when an idle connection of the store's own pool fails (the server restarted, a failover, an idle
   * timeout on the server's side): the pool drops it and connects again for the next query. Without a
   * listener such an error would end the process. Default: ignored. (A `pool` you give needs its own
   * `'error'` listener.)
   */
  readonly onConnectionError?: (error: Error) => void;
  /** Told when the settings are read again after the server could not be reached. Default: ignored. */
  readonly onReachableAgain?: () => void;
  /** Told the schema migrations this open applied (names, e.g. `002_example_checks`), when any. Default: ignored. */
  readonly onMigrated?: (applied: readonly string[]) => void;
}

/** Default `queryTimeoutMs`: far above any query of the store (ms), below the recognition function's timeout. */
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

const optionsSchema = z
  .strictObject({
    connectionString: z.string().min(1).optional(),
    pool: z.custom<pg.Pool>((v) => typeof v === 'object' && v !== null).optional(),
    collection: z
      .string()
      .min(1)
      .superRefine((name, ctx) => {
        const issue = storedTextIssue(name, 200);
        if (issue) ctx.addIssue({ code: 'custom', message: `the collection name ${issue}` });
      })
      .default('default'),
    embedder: z.custom<GalleryEmbedderInfo>((v) => typeof v === 'object' && v !== null).optional(),
    create: z.boolean().default(true),
    metric: z.enum(['euclidean', 'cosine']).default('euclidean'),
    threshold: thresholdSchema.default(0),
    search: z.enum(['exact', 'hnsw']).default('hnsw'),
    efSearch: z.number().int().min(1).max(MAX_EF_SEARCH).default(400),
    hnsw: z
      .strictObject({
        m: z.number().int().min(2).max(100).optional(),
        efConstruction: z.number().int().min(4).max(1000).optional(),
      })
      .default({}),
    migrate: z.boolean().default(true),
    maxConnections: z.number().int().min(1).max(1000).default(10),
    queryTimeoutMs: z.number().int().min(0).default(DEFAULT_QUERY_TIMEOUT_MS),
    refreshSeconds: z.number().min(0).default(1),
    onReloadError: z.custom<(error: Error) => void>((v) => typeof v === 'function').optional(),
    onConnectionError: z.custom<(error: Error) => void>((v) => typeof v === 'function').optional(),
    onReachableAgain: z.custom<() => void>((v) => typeof v === 'function').optional(),
    onMigrated: z.custom<(applied: readonly string[]) => void>((v) => typeof v === 'function').optional(),
  })
  .refine((o) => (o.connectionString === undefined) !== (o.pool === undefined), {
    message: 'give exactly one of connectionString and pool',
  });

/**
 * A collection's settings row, checked when it is read as a gallery file is: the row is data another process
 * (or a person with psql) may have written, and the threshold and calibration decide who is recognised.
 */
const collectionRowSchema = z.object({
  model_id: z.string().min(1),
  weights_sha256: z.string().min(1).nullable(),
  dimension: z.number().int().positive(),
  preprocessing: embedderPreprocessingSchema,
  metric: metricSchema,
  threshold: thresholdSchema,
  calibration: calibrationSchema.nullable(),
});
type CollectionRow = z.output<typeof collectionRowSchema>;

/** Rows per INSERT statement when adding many examples. */
const INSERT_BATCH = 500;

/**
 * pgvector's text form of a vector. Each float32 printed as JavaScript's shortest round-trip decimal of the
 * same value, which the server parses back to the same float32.
 */
const toVector = (v: Float32Array) => `[${Array.prototype.join.call(v, ',')}]`;

/**
 * The connection string without its passwords, for messages: the one in `user:password@` and the ones pg also
 * reads from the query string (`password`, `sslpassword`). The user information is cut at the last `@` of the
 * text as written, before it is parsed: a password with an unencoded `#`, `?` or `/` would otherwise be parsed
 * partly as the fragment, query or path and shown. No fragment is shown (a connection string has none).
 */
export function redactConnectionString(connectionString: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(connectionString)?.[0];
  if (!scheme) return 'postgres (connection string not shown)';
  let rest = connectionString.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    rest = `${colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:***`}@${rest.slice(at + 1)}`;
  }
  try {
    const url = new URL(scheme + rest);
    url.hash = '';
    for (const key of ['password', 'sslpassword']) {
      if (url.searchParams.has(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    return 'postgres (connection string not shown)';
  }
}

/**
 * How a collection is named in messages and logs: its URL without passwords, with `?collection=` (as
 * `facerec` commands take it), or `postgres (pool), collection <name>` for a pool given.
 */
function collectionLocation(connectionString: string | undefined, collection: string): string {
  if (connectionString === undefined) return `postgres (pool), collection ${collection}`;
  const redacted = redactConnectionString(connectionString);
  try {
    const url = new URL(redacted);
    url.searchParams.set('collection', collection);
    return url.toString();
  } catch {
    return `${redacted}, collection ${collection}`;
  }
}

/**
 * A {@link GalleryStore} in PostgreSQL with pgvector: one row per collection (the embedder, metric and
 * threshold) and one per example (the normalised embedding as `vector`), in the schema of the package's
 * migrations. Every mutation is one transaction. Search is by inner product (the embeddings are unit
 * vectors): `exact` groups every example of the collection by identity; `hnsw` takes the `efSearch` nearest
 * examples from the collection's HNSW index (`vector_ip_ops`, a partial index on `embedding::vector(d)`), then
 * groups them. Only `nearest` aggregation (an identity's distance is that of its closest example).
 *
 * Mutations are visible to every process at once: there is nothing cached but the collection's settings.
 *
 * @example
 * const store = await PostgresGalleryStore.open({
 *   connectionString: process.env.DATABASE_URL!,
 *   collection: 'staff',
 *   embedder,
 * });
 * await store.add('alice', [{ embedding, source: 'alice-1.jpg' }]);
 * const [match] = await store.match([query], { topK: 3 });
 */
export class PostgresGalleryStore implements GalleryStore {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly aggregation = 'nearest' as const;
  readonly collection: string;
  readonly embedder: GalleryEmbedderInfo;
  readonly metric: DistanceMetric;
  readonly location: string;
  readonly search: PostgresSearchMode;
  readonly efSearch: number;
  #created = false;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  #threshold: number;
  #calibration: GalleryCalibration | undefined;
  readonly #refreshMs: number;
  readonly #onReloadError: ((error: Error) => void) | undefined;
  readonly #onReachableAgain: (() => void) | undefined;
  /** The last settings read failed because the server could not be reached (reported once). */
  #unreachable = false;
  /** Why, for {@link PostgresGalleryStore.checkReachable}. */
  #unreachableError: Error | undefined;
  /**
   * The last settings read found no collection (deleted, or its tables gone with a database recreated), or one
   * made since for another embedder: searches, listings, removals and health checks fail with it (rather than
   * answering every face `unknown`, or matching against embeddings of another model) until a read finds the
   * collection as this handle was opened for it.
   */
  #unusable: GalleryStoreNotFoundError | EmbedderMismatchError | undefined;
  #settingsReadAt = performance.now();
  #settingsRead: Promise<void> | undefined;
  /** Bumped by every `setThreshold`: a read of the settings started before one is not applied. */
  #settingsGeneration = 0;
  /** Calls in flight (every public method that reaches the pool): `close` lets them finish. */
  readonly #calls: CallGate;

  /** True when this handle's open created the collection (see `GalleryStore.created`). */
  get created(): boolean {
    return this.#created;
  }

  private constructor(
    pool: pg.Pool,
    ownsPool: boolean,
    options: z.output<typeof optionsSchema>,
    row: CollectionRow,
    location: string,
  ) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.collection = options.collection;
    this.search = options.search;
    this.efSearch = options.efSearch;
    this.location = location;
    this.#calls = new CallGate(`gallery store ${location}`);
    this.embedder = {
      modelId: row.model_id,
      weightsSha256: row.weights_sha256 ?? undefined,
      dimension: row.dimension,
      preprocessing: row.preprocessing,
    };
    this.metric = row.metric;
    this.#threshold = row.threshold;
    this.#calibration = row.calibration ?? undefined;
    this.#refreshMs = options.refreshSeconds * 1000;
    this.#onReloadError = options.onReloadError;
    this.#onReachableAgain = options.onReachableAgain;
  }

  /**
   * Connects, migrates the schema (unless `migrate: false`), and opens the collection, creating it (with its
   * HNSW index) for `embedder` when it does not exist.
   *
   * @throws EmbedderMismatchError when the collection was created for another embedder.
   * @throws InvalidOptionsError for bad options, or a missing collection and no embedder to create it for.
   * Connection and SQL errors propagate as `pg` raises them.
   */
  static async open(options: PostgresGalleryStoreOptions): Promise<PostgresGalleryStore> {
    const o = parseOptions(optionsSchema, options, '@facerec/gallery-postgres');
    const pool = openPool(o);
    const location = collectionLocation(o.connectionString, o.collection);
    try {
      if (o.migrate) await migrateAndTell(pool, location, o.onMigrated);
      let created = false;
      let row = await readCollection(pool, o.collection, location);
      if (!row) {
        if (!o.embedder || !o.create) {
          throw new GalleryStoreNotFoundError(
            location,
            o.create ? ': no such collection; give the embedder to create it for' : ': no such collection',
          );
        }
        checkNewCollectionName(o.collection);
        created = await createCollection(pool, o.collection, o.embedder, o);
        row = (await readCollection(pool, o.collection, location))!;
      }
      if (!created) await refuseUnsoundRows(pool, o.collection, location);
      const store = new PostgresGalleryStore(pool, !o.pool, o, row, location);
      store.#created = created;
      if (o.embedder) assertEmbedderCompatible(store.embedder, o.embedder);
      return store;
    } catch (error) {
      if (!o.pool) await pool.end().catch(() => undefined);
      throw unreachable(error, location) ?? refusedByServer(error, location) ?? error;
    }
  }

  /**
   * Creates collection `options.collection` holding a copy of `gallery` (its examples, embedder, metric,
   * threshold and calibration) in **one transaction**, and opens it. A copy that fails or stops part-way (an
   * aborted `signal`, a bad example, the connection lost, the process killed) leaves no collection at all:
   * added piece by piece, a copy killed part-way left a collection that was served as if whole. The HNSW index
   * is built after the rows. `onProgress` is called with the examples inserted so far, `onIndexing` once they
   * all are, as the index build starts (minutes for 100,000 examples on a small server, with no count to show).
   * An aborted `signal` is seen between chunks of rows and after the build.
   *
   * @throws InvalidOptionsError when the collection exists (nothing is merged) or the gallery aggregates its
   *   examples otherwise than `nearest` (the only aggregation a collection has).
   * @example
   * const store = await PostgresGalleryStore.createFrom(
   *   { connectionString: process.env.DATABASE_URL!, collection: 'staff' },
   *   await FileGallery.load('staff.gallery.json'),
   * );
   */
  static async createFrom(
    options: Omit<PostgresGalleryStoreOptions, 'embedder' | 'create' | 'metric' | 'threshold'>,
    gallery: FileGallery,
    progress: {
      readonly onProgress?: (done: number, total: number) => void;
      readonly onIndexing?: () => void;
      readonly signal?: AbortSignal;
    } = {},
  ): Promise<PostgresGalleryStore> {
    if (!(gallery instanceof FileGallery)) {
      throw new InvalidOptionsError('@facerec/gallery-postgres', 'createFrom: gallery must be a FileGallery');
    }
    const o = parseOptions(
      optionsSchema,
      {
        ...options,
        embedder: gallery.embedder,
        create: true,
        metric: gallery.metric,
        threshold: gallery.threshold,
      },
      '@facerec/gallery-postgres',
    );
    const location = collectionLocation(o.connectionString, o.collection);
    if (gallery.aggregation !== 'nearest') {
      throw new InvalidOptionsError(
        '@facerec/gallery-postgres',
        `a collection matches by each identity's nearest example; the gallery aggregates by ${gallery.aggregation}`,
      );
    }
    checkNewCollectionName(o.collection);
    const pool = openPool(o);
    try {
      if (o.migrate) await migrateAndTell(pool, location, o.onMigrated);
      const total = gallery.exampleCount;
      await inTransaction(pool, async (client) => {
        const settings = { metric: o.metric, threshold: o.threshold, calibration: gallery.calibration };
        if (!(await insertCollection(client, o.collection, gallery.embedder, settings))) {
          throw new InvalidOptionsError(
            '@facerec/gallery-postgres',
            `${location} exists: create a new collection (nothing is merged), or drop it first`,
          );
        }
        progress.signal?.throwIfAborted();
        // A chunk of identities prepared at a time: the gallery's embeddings are not all copied at once.
        let done = 0;
        let chunk: PreparedExample[] = [];
        const flush = async () => {
          const base = done;
          await insertExamples(client, o.collection, chunk, (n) => progress.onProgress?.(base + n, total));
          done += chunk.length;
          chunk = [];
          progress.signal?.throwIfAborted();
        };
        for (const identity of gallery.names) {
          const examples = prepareExamples(
            '@facerec/gallery-postgres createFrom',
            identity,
            gallery.embedder.dimension,
            gallery.examples(identity),
          );
          for (const e of examples) chunk.push(e);
          if (chunk.length >= INSERT_BATCH * 4) await flush();
        }
        await flush();
        // Building the index over every row takes longer than any one query of a running store (minutes for
        // 100,000 examples on a small server): those two statements get an hour unless no limit is set.
        const timeout = o.queryTimeoutMs > 0 ? Math.max(o.queryTimeoutMs, BUILD_TIMEOUT_MS) : 0;
        progress.onIndexing?.();
        await createIndex(client, o.collection, gallery.embedder.dimension, o.hnsw, timeout);
        progress.signal?.throwIfAborted();
        // Statistics for the rows just added: without them the planner took the collection's identity index and
        // sorted every row (exact, but a scan) over the HNSW index built after the rows.
        await client.query(withTimeout('ANALYZE facerec_examples', timeout));
        progress.signal?.throwIfAborted();
      });
      const row = (await readCollection(pool, o.collection, location))!;
      const store = new PostgresGalleryStore(pool, !o.pool, o, row, location);
      store.#created = true;
      return store;
    } catch (error) {
      if (!o.pool) await pool.end().catch(() => undefined);
      throw unreachable(error, location) ?? refusedByServer(error, location) ?? error;
    }
  }

  /**
   * The threshold as of the last read of the collection's settings: at opening, by `match` at most every
   * `refreshSeconds`, or the last {@link PostgresGalleryStore.setThreshold}.
   */
  get threshold(): number {
    return this.#threshold;
  }

  get isCalibrated(): boolean {
    return this.#calibration !== undefined;
  }

  /** How the threshold was calibrated, as of the last read of the settings (see {@link threshold}). */
  get calibration(): GalleryCalibration | undefined {
    return this.#calibration;
  }

  assertCompatible(embedder: GalleryEmbedderInfo): void {
    assertEmbedderCompatible(this.embedder, embedder);
  }

  identities(): Promise<string[]> {
    return this.#calls.run(async () => {
      await this.#usable();
      const { rows } = await this.#reach(() =>
        this.#pool.query<{ identity: string }>(
          'SELECT DISTINCT identity COLLATE "C" AS identity FROM facerec_examples WHERE collection = $1 ORDER BY 1',
          [this.collection],
        ),
      );
      return rows.map((r) => r.identity);
    });
  }

  list(options: ListExamplesOptions = {}): Promise<StoredExample[]> {
    return this.#calls.run(async () => {
      await this.#usable();
      const { rows } = await this.#reach(() =>
        this.#pool.query<StoredExample>(
          `SELECT id, identity, ${BOUNDED_SOURCE} AS source FROM facerec_examples
           WHERE collection = $1 AND ($2::text IS NULL OR identity = $2)
           ORDER BY identity COLLATE "C", seq`,
          [this.collection, options.identity ?? null],
        ),
      );
      return rows.map((r) => ({ id: r.id, identity: r.identity, source: r.source }));
    });
  }

  /**
   * One page of {@link list}'s order and the count of all, in one statement (one snapshot of the table): the
   * page's rows alone come back (`LIMIT`/`OFFSET` on the identity index), not the collection.
   */
  async listPage(options: ListPageOptions): Promise<ExamplePage> {
    const { identity, offset, limit } = checkPage('PostgresGalleryStore.listPage', options);
    return this.#calls.run(async () => {
      await this.#usable();
      const { rows } = await this.#reach(() =>
        this.#pool.query<{ total: number; id: string | null; identity: string; source: string }>(
          `SELECT counted.total, page.id, page.identity, page.source
           FROM (SELECT count(*)::int AS total FROM facerec_examples
                 WHERE collection = $1 AND ($2::text IS NULL OR identity = $2)) counted
           LEFT JOIN LATERAL (
             SELECT id, identity, seq, ${BOUNDED_SOURCE} AS source FROM facerec_examples
             WHERE collection = $1 AND ($2::text IS NULL OR identity = $2)
             ORDER BY identity COLLATE "C", seq LIMIT $3 OFFSET $4
           ) page ON true
           ORDER BY page.identity COLLATE "C", page.seq`,
          [this.collection, identity ?? null, limit, offset],
        ),
      );
      return {
        // One row with no example when the page is empty (past the end, or nothing matches).
        examples: rows
          .filter((r) => r.id !== null)
          .map((r) => ({ id: r.id!, identity: r.identity, source: r.source })),
        total: rows[0]?.total ?? 0,
      };
    });
  }

  /**
   * The collection as it is now, as an in-memory {@link FileGallery} (every example with its embedding, the
   * collection's settings): what threshold calibration works on (`facerec gallery calibrate --gallery
   * postgres://…`). Reads every row: memory grows with the collection (a 512-d example is 2 KiB as float32).
   */
  snapshot(): Promise<FileGallery> {
    return this.#calls.run(async () => {
      await this.#usable();
      const { rows } = await this.#reach(() =>
        this.#pool.query<{ identity: string; source: string; embedding: string }>(
          `SELECT identity, ${BOUNDED_SOURCE} AS source, embedding::text AS embedding FROM facerec_examples
           WHERE collection = $1 ORDER BY identity COLLATE "C", seq`,
          [this.collection],
        ),
      );
      const identities = new Map<string, { source: string; embedding: Float32Array }[]>();
      for (const row of rows) {
        // pgvector's text form, `[0.1,-0.2,…]`, is JSON; every value was written from a float32.
        const embedding = Float32Array.from(JSON.parse(row.embedding) as number[]);
        // Normalised silently by the gallery it goes into otherwise: a row no facerec write makes (see
        // #checkCandidates) would have been copied as if sound.
        const length = norm(embedding);
        if (!(Math.abs(length - 1) <= UNIT_TOLERANCE)) {
          throw new GalleryFormatError(
            `an example of identity ${shownName(row.identity)} is not a unit vector (length ${length.toFixed(4)}): ` +
              'a row written outside facerec; remove it and add the photo again (facerec gallery remove / add)',
            { source: this.location, problem: 'invalid' },
          );
        }
        const examples = identities.get(row.identity) ?? [];
        examples.push({ source: row.source, embedding });
        identities.set(row.identity, examples);
      }
      return FileGallery.create({
        embedder: this.embedder,
        metric: this.metric,
        aggregation: this.aggregation,
        threshold: this.#threshold,
        ...(this.#calibration ? { calibration: this.#calibration } : {}),
        identities: [...identities].map(([name, examples]) => ({ name, examples })),
      });
    });
  }

  async add(identity: string, examples: readonly NewExample[]): Promise<AddedExample[]> {
    const [added] = await this.addMany([{ identity, examples }]);
    return added!;
  }

  /**
   * Adds the examples of many identities in one transaction (all or nothing), in multi-row INSERTs: a bulk
   * import (a file gallery copied into the database, a benchmark) without one round trip per identity.
   * Resolves to each entry's stored examples.
   */
  addMany(
    entries: readonly { readonly identity: string; readonly examples: readonly NewExample[] }[],
  ): Promise<AddedExample[][]> {
    return this.#calls.run(async () => {
      const prepared = entries.map(({ identity, examples }) =>
        prepareExamples('@facerec/gallery-postgres add', identity, this.embedder.dimension, examples),
      );
      const rows = prepared.flat();
      await this.#usable();
      // An example already held keeps its source: each entry resolves to the examples as stored.
      const stored = new Map<string, string>();
      // Examples held under the id an earlier version gave them (a photo it stored, added again): by new id.
      const legacy = new Map<string, { id: string; source: string }>();
      await this.#transaction(async (client) => {
        const legacyIds = rows.flatMap((e) => (e.legacyId ? [e.legacyId] : []));
        if (legacyIds.length) {
          const found = await client.query<{ id: string; source: string }>(
            'SELECT id, source FROM facerec_examples WHERE collection = $1 AND id = ANY($2::text[])',
            [this.collection, legacyIds],
          );
          const held = new Map(found.rows.map((r) => [r.id, r.source]));
          for (const { id, legacyId } of rows) {
            const source = legacyId === undefined ? undefined : held.get(legacyId);
            if (legacyId !== undefined && source !== undefined) legacy.set(id, { id: legacyId, source });
          }
        }
        const fresh = rows.filter((e) => !legacy.has(e.id));
        for (const [id, source] of await insertExamples(client, this.collection, fresh))
          stored.set(id, source);
      });
      // Held already (before this transaction, or inserted by another one that committed first): not added here.
      return prepared.map((list) =>
        list.map(({ id, identity, source }) => {
          const old = legacy.get(id);
          if (old) return { id: old.id, identity, source: old.source, added: false };
          const held = stored.get(id);
          return { id, identity, source: held ?? source, added: held === undefined };
        }),
      );
    });
  }

  removeExamples(ids: readonly string[]): Promise<void> {
    return this.#calls.run(async () => {
      const unique = [...new Set(ids)];
      if (unique.length === 0) return;
      await this.#usable();
      await this.#transaction(async (client) => {
        const { rows } = await client.query<{ id: string }>(
          'DELETE FROM facerec_examples WHERE collection = $1 AND id = ANY($2::text[]) RETURNING id',
          [this.collection, unique],
        );
        if (rows.length !== unique.length) {
          const removed = new Set(rows.map((r) => r.id));
          // Thrown inside the transaction: it rolls back, and nothing is removed.
          throw new UnknownExampleError(unique.filter((id) => !removed.has(id)));
        }
      });
    });
  }

  removeIdentity(identity: string): Promise<number> {
    return this.#calls.run(async () => {
      await this.#usable();
      const { rowCount } = await this.#reach(() =>
        this.#pool.query('DELETE FROM facerec_examples WHERE collection = $1 AND identity = $2', [
          this.collection,
          identity,
        ]),
      );
      if (!rowCount) {
        const count = (await this.identities()).length;
        throw new UnknownIdentityError([identity], count);
      }
      return rowCount;
    });
  }

  /**
   * Reads the collection's threshold and calibration again when `refreshSeconds` passed (one read at a time;
   * concurrent matches wait for it). Settings that cannot be used are reported and the current ones kept.
   */
  async #refreshSettings(): Promise<void> {
    if (this.#settingsRead) return this.#settingsRead;
    if (performance.now() - this.#settingsReadAt < this.#refreshMs) return;
    const generation = this.#settingsGeneration;
    this.#settingsRead = (async () => {
      try {
        const row = await this.#reach(() => readCollection(this.#pool, this.collection, this.location));
        if (!row) throw new GalleryStoreNotFoundError(this.location, ': the collection was deleted');
        assertEmbedderCompatible(this.embedder, {
          modelId: row.model_id,
          weightsSha256: row.weights_sha256 ?? undefined,
          dimension: row.dimension,
          preprocessing: row.preprocessing,
        });
        this.#unusable = undefined;
        if (row.metric !== this.metric) {
          // A threshold is a distance in one metric: this handle keeps matching in its own.
          throw new GalleryFormatError(`the collection's metric changed to ${row.metric}; reopen the store`, {
            source: this.location,
          });
        }
        if (this.#unreachable) {
          this.#unreachable = false;
          this.#onReachableAgain?.();
        }
        if (generation !== this.#settingsGeneration) return; // this handle's own setThreshold is newer
        this.#threshold = row.threshold;
        this.#calibration = row.calibration ?? undefined;
      } catch (error) {
        // A server out of reach is reported once, until it answers again (not at every read).
        const unreachable = FacerecError.isInstance(error) && error.code === 'GALLERY_UNREACHABLE';
        // A collection gone or remade for another embedder is reported once too, until it is back.
        const unusable =
          GalleryStoreNotFoundError.isInstance(error) || EmbedderMismatchError.isInstance(error)
            ? error
            : undefined;
        if (!(unreachable && this.#unreachable) && !(unusable && this.#unusable?.code === unusable.code)) {
          this.#onReloadError?.(error as Error);
        }
        this.#unreachable = unreachable;
        this.#unreachableError = unreachable ? (error as Error) : undefined;
        // Cleared only by a read that finds the collection as this handle was opened for: a bad settings row or a
        // refused read meanwhile says nothing of the embeddings searched.
        if (unusable) this.#unusable = unusable;
      } finally {
        this.#settingsReadAt = performance.now();
        this.#settingsRead = undefined;
      }
    })();
    return this.#settingsRead;
  }

  /**
   * Reads the collection's settings now (one row; the read searches make every `refreshSeconds`) and rejects
   * with the error when the server could not be reached (see `GalleryStore.checkReachable`), or the collection is
   * gone (its row or the examples' table) or was made again for another embedder: searches fail then. A settings
   * row that cannot be used is no such failure: searches go on with the settings held.
   */
  checkReachable(): Promise<void> {
    return this.#calls.run(async () => {
      this.#settingsReadAt = Number.NEGATIVE_INFINITY;
      await this.#refreshSettings();
      if (this.#unreachable && this.#unreachableError) throw this.#unreachableError;
      if (this.#unusable) throw this.#unusable;
      // The examples' table too (the settings read touches only the collections'): gone, searches fail.
      await this.#reach(() =>
        this.#pool.query('SELECT 1 FROM facerec_examples WHERE collection = $1 LIMIT 1', [this.collection]),
      );
    });
  }

  /** Reads the settings when due, and fails when the collection is gone or remade (see `#unusable`). */
  async #usable(): Promise<void> {
    await this.#refreshSettings();
    if (this.#unusable) throw this.#unusable;
  }

  /**
   * Sets the collection's threshold (and the calibration that chose it, if any).
   * @throws InvalidOptionsError when `threshold` is not a finite number ≥ 0.
   */
  setThreshold(threshold: number, calibration?: GalleryCalibration): Promise<void> {
    return this.#calls.run(async () => {
      const checked = checkThresholdSetting('@facerec/gallery-postgres', threshold, calibration);
      this.#settingsGeneration++;
      await this.#reach(() =>
        this.#pool.query('UPDATE facerec_collections SET threshold = $2, calibration = $3 WHERE name = $1', [
          this.collection,
          threshold,
          calibration ? JSON.stringify(calibration) : null,
        ]),
      );
      this.#threshold = threshold;
      this.#calibration = checked;
    });
  }

  /**
   * The best identity for each query, with the `topK` nearest identities as candidates (see the
   * {@link GalleryStore} contract). With `hnsw`, identities beyond the `max(efSearch, topK)` nearest examples
   * are not candidates (so fewer than `topK` come back when those examples hold fewer identities).
   */
  match(queries: readonly Float32Array[], options: MatchOptions = {}): Promise<GalleryMatch[]> {
    return this.#calls.run(async () => {
      // Every face would be answered `unknown`, as if no one enrolled were in the frame.
      await this.#usable();
      const { topK, threshold } = resolveMatchOptions(options, this.#threshold, 'match');
      const vectors = queries.map((q, i) => {
        const where = queries.length > 1 ? `query ${i}` : 'query';
        if (!(q instanceof Float32Array))
          throw new InvalidInputError(`match: ${where} is not a Float32Array`);
        if (q.length !== this.embedder.dimension) {
          throw new InvalidInputError(
            `match: ${where} has ${q.length} values; the gallery holds ${this.embedder.dimension}-d embeddings of "${this.embedder.modelId}"`,
          );
        }
        const unit = new Float32Array(q.length);
        if (!normaliseInto(q, unit))
          throw new InvalidInputError(`match: ${where} is zero or has non-finite values`);
        return toVector(unit);
      });
      const results = await this.#reach(() => Promise.all(vectors.map((v) => this.#nearest(v, topK))));
      return results.map((rows) => {
        const candidates: IdentityCandidate[] = rows.map((r) => {
          // Checked when the store opened, and refused by the server's check since; a row renamed by hand since
          // is not answered as if it were the pipeline's answer.
          if (r.identity === UNKNOWN_IDENTITY || r.identity === NO_FACE_RESULT) {
            throw reservedNameError(r.identity, this.collection, this.location);
          }
          return { identity: r.identity, distance: distanceFromDot(this.metric, r.dot) };
        });
        return matchOf(candidates, threshold);
      });
    });
  }

  /**
   * Removes the collection: its examples, its settings and its index, in one transaction (another store open on
   * it then finds no such collection). For a copy that did not finish, or a collection no longer wanted; the store
   * is closed after it.
   */
  async drop(): Promise<void> {
    await this.#calls.run(() =>
      this.#transaction(async (client) => {
        // Its examples go with it (ON DELETE CASCADE).
        await client.query('DELETE FROM facerec_collections WHERE name = $1', [this.collection]);
        await client.query(`DROP INDEX IF EXISTS ${pg.escapeIdentifier(hnswIndexName(this.collection))}`);
      }),
    );
    await this.close();
  }

  /**
   * Lets the calls already made finish (a settings read included), then ends the pool when the store made
   * it; every call after it rejects with `DisposedError`. Ending the pool under a running call left that call
   * pending for ever.
   */
  async close(): Promise<void> {
    // Once: pg's Pool throws when ended twice, and closing twice is harmless everywhere else.
    if ((await this.#calls.close()) && this.#ownsPool && !this.#pool.ended) await this.#pool.end();
  }

  /**
   * Runs `work`, raising a server that cannot be reached as `GALLERY_UNREACHABLE` (see {@link unreachable}), the
   * store's tables gone as `GALLERY_NOT_FOUND` (see {@link tablesGone}), and a statement the server refused (a
   * permission not granted, a table damaged by hand) as `GALLERY_STORE_REFUSED` naming the store: it was an
   * "unexpected error" with Postgres's words alone.
   */
  async #reach<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw (
        unreachable(error, this.location) ??
        tablesGone(error, this.location) ??
        refusedByServer(error, this.location) ??
        error
      );
    }
  }

  /** One transaction on the pool, through {@link PostgresGalleryStore.#reach}. */
  #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#reach(() => inTransaction(this.#pool, work));
  }

  /** The `topK` identities nearest to `vector`, with their best dot product, nearest first. */
  async #nearest(vector: string, topK: number): Promise<{ identity: string; dot: number }[]> {
    const { sql, params, efSearch } = this.#searchStatement(vector, topK);
    if (efSearch === undefined)
      return (await this.#pool.query<{ identity: string; dot: number }>(sql, params)).rows;
    return inTransaction(this.#pool, async (client) => {
      await this.#useIndex(client, efSearch);
      return (await client.query<{ identity: string; dot: number }>(sql, params)).rows;
    });
  }

  /**
   * The query plan of a search as `match` runs it (`EXPLAIN ANALYZE`), to check that `hnsw` walks the index:
   * for operators and tests.
   */
  explainMatch(query: Float32Array, topK = 1): Promise<string> {
    return this.#calls.run(async () => {
      const unit = new Float32Array(query.length);
      if (query.length !== this.embedder.dimension || !normaliseInto(query, unit)) {
        throw new InvalidInputError(
          `explainMatch: the query must be a non-zero ${this.embedder.dimension}-d vector`,
        );
      }
      const { sql, params, efSearch } = this.#searchStatement(toVector(unit), topK);
      return this.#transaction(async (client) => {
        if (efSearch !== undefined) await this.#useIndex(client, efSearch);
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ANALYZE ${sql}`, params);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    });
  }

  /**
   * The statement of one search, and the `ef_search` it walks the index with (none: a scan). HNSW returns at
   * most `ef_search` rows, so a `topK` above `efSearch` walks with `ef_search` = `topK` (else fewer identities
   * came back than asked for, without a word), and one above pgvector's largest `ef_search` (1,000) scans the
   * collection, as `exact` does.
   */
  #searchStatement(
    vector: string,
    topK: number,
  ): { sql: string; params: unknown[]; efSearch: number | undefined } {
    const efSearch = Math.max(this.efSearch, topK);
    if (this.search === 'exact' || efSearch > MAX_EF_SEARCH) {
      // The cast-free expression matches no index: a scan of the collection, exact.
      return {
        sql: `SELECT identity, max(-(embedding <#> $2::vector)) AS dot FROM facerec_examples
              WHERE collection = $1 GROUP BY identity ORDER BY dot DESC, identity COLLATE "C" LIMIT $3`,
        params: [this.collection, vector, topK],
        efSearch: undefined,
      };
    }
    // The index is partial (on this collection) and on embedding::vector(d): the collection and d must appear
    // as constants for the planner to use it, so they are written into the statement (the name escaped).
    const d = this.embedder.dimension;
    const distance = `(embedding::vector(${d})) <#> $1::vector(${d})`;
    return {
      sql: `SELECT identity, max(dot) AS dot FROM (
              SELECT identity, -(${distance}) AS dot FROM facerec_examples
              WHERE collection = ${pg.escapeLiteral(this.collection)}
              ORDER BY ${distance} LIMIT $2
            ) nearest GROUP BY identity ORDER BY dot DESC, identity COLLATE "C" LIMIT $3`,
      params: [vector, efSearch, topK],
      efSearch,
    };
  }

  /**
   * For this transaction: `ef_search`, and no sequential or bitmap scan. Without statistics (a table not yet
   * analysed) or on a small collection the planner otherwise prefers scanning the collection through the
   * identity index and sorting every row: exact, but as slow as `exact` (measured: 68 ms instead of 3 ms per
   * query on 10,000 × 512).
   */
  async #useIndex(client: pg.PoolClient, efSearch: number): Promise<void> {
    await client.query(
      `SELECT set_config('hnsw.ef_search', $1, true), set_config('enable_seqscan', 'off', true),
              set_config('enable_bitmapscan', 'off', true)`,
      [String(efSearch)],
    );
  }
}

/**
 * The collection's settings, validated.
 * @throws GalleryFormatError naming every invalid field (at `location`).
 */
async function readCollection(
  pool: pg.Pool,
  name: string,
  location: string,
): Promise<CollectionRow | undefined> {
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT model_id, weights_sha256, dimension, preprocessing, metric, threshold, calibration
     FROM facerec_collections WHERE name = $1`,
    [name],
  );
  if (!rows[0]) return undefined;
  const checked = collectionRowSchema.safeParse(rows[0]);
  if (!checked.success) {
    throw new GalleryFormatError("the collection's settings in facerec_collections are not valid", {
      source: location,
      issues: zodIssues(checked.error),
    });
  }
  return checked.data;
}

/** How long the store's own pool waits for a connection. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The store's tables not there (`42P01`, undefined_table): a database recreated or restored without them under a
 * running store, which its open would have migrated. Said as the collection missing, not as a server error.
 */
function tablesGone(error: unknown, location: string): GalleryStoreNotFoundError | undefined {
  if (!(error instanceof pg.DatabaseError) || error.code !== '42P01') return undefined;
  return new GalleryStoreNotFoundError(
    location,
    ': the database has no facerec tables (recreated or restored without them?); open the store again to create them, and copy the gallery back (facerec gallery copy)',
  );
}

/**
 * A server's refusal at opening (a login refused, no such database, no pgvector), naming the store: the server's
 * own message (it holds no password) and, for a missing extension, what to install. `undefined` for other errors.
 */
function refusedByServer(error: unknown, location: string): FacerecError | undefined {
  if (!(error instanceof Error)) return undefined;
  // pg's own errors before a session starts: a password asked for and none given, SSL refused.
  if (/client password must be a string/.test(error.message)) {
    return new FacerecError(
      'GALLERY_STORE_REFUSED',
      `${location}: the server asks for a password and none was given: set PGPASSWORD or put it in the URL`,
      { cause: error },
    );
  }
  if (!(error instanceof pg.DatabaseError) && !/does not support SSL/.test(error.message)) return undefined;
  const hint = /extension "vector"/.test(error.message)
    ? ': install pgvector on the server (RDS and Aurora have it; elsewhere the postgresql-<version>-pgvector package)'
    : '';
  return new FacerecError('GALLERY_STORE_REFUSED', `${location}: ${error.message}${hint}`, { cause: error });
}

/** Postgres's codes for a server shutting down or starting (57P01–57P03) and its connection exceptions (08…). */
const POSTGRES_UNREACHABLE = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

/**
 * The error to raise when `error` says the server cannot be reached (no server, a connection cut, a
 * connection timeout): `GALLERY_UNREACHABLE`, naming the store without credentials (a caller answers 503 and
 * tries again later). `undefined` for any other error. pg's own connection errors carry no code, only their
 * message ("Connection terminated unexpectedly", "timeout exceeded when trying to connect").
 */
function unreachable(error: unknown, location: string): FacerecError | undefined {
  const code = unreachableCode(error, POSTGRES_UNREACHABLE);
  const message = String((error as { message?: unknown } | undefined)?.message ?? '');
  const lost = /^Connection terminated|timeout exceeded when trying to connect/i.test(message);
  const unanswered = isQueryTimeout(error);
  if (code === undefined && !lost && !unanswered) return undefined;
  return galleryUnreachable(
    'the Postgres server',
    location,
    code ?? (unanswered ? 'no answer within the query timeout' : 'connection lost'),
    error,
  );
}

/** The store's pool: the one given, or a new one for the connection string (its errors to `onConnectionError`). */
function openPool(o: z.output<typeof optionsSchema>): pg.Pool {
  if (o.pool) return o.pool;
  const pool = new pg.Pool({
    connectionString: o.connectionString,
    max: o.maxConnections,
    // A server that never answers (a dropped packet, a firewall) fails a query instead of holding it.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(o.queryTimeoutMs > 0 ? { query_timeout: o.queryTimeoutMs } : {}),
  });
  pool.on('error', (error) => o.onConnectionError?.(error));
  return pool;
}

/**
 * Refuses a new collection's name padded with spaces: a typo waiting to happen (`?collection=+staff+`), not
 * made, as identity names are not. (One made before keeps opening.)
 */
function checkNewCollectionName(name: string): void {
  if (/^\s|\s$/u.test(name)) {
    throw new InvalidOptionsError(
      '@facerec/gallery-postgres',
      `the collection name ${JSON.stringify(name.slice(0, 200))} has spaces at the start or end`,
    );
  }
}

/**
 * Creates the collection and its HNSW index in one transaction; a collection created meanwhile by another
 * process is left as it is (the caller then checks its embedder). True when this call created it.
 */
async function createCollection(
  pool: pg.Pool,
  name: string,
  embedder: GalleryEmbedderInfo,
  o: z.output<typeof optionsSchema>,
): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    if (!(await insertCollection(client, name, embedder, o))) return false;
    await createIndex(client, name, embedder.dimension, o.hnsw);
    return true;
  });
}

/**
 * Inserts the collection's settings row, in the caller's transaction; false when a collection of that name
 * exists (or another transaction made one and committed first).
 */
async function insertCollection(
  client: pg.PoolClient,
  name: string,
  embedder: GalleryEmbedderInfo,
  o: { metric: DistanceMetric; threshold: number; calibration?: GalleryCalibration | undefined },
): Promise<boolean> {
  const d = embedder.dimension;
  if (!Number.isSafeInteger(d) || d < 1 || d > 2000) {
    // pgvector indexes up to 2,000 dimensions.
    throw new InvalidOptionsError('@facerec/gallery-postgres', `embedder dimension must be 1–2000, got ${d}`);
  }
  const p = embedder.preprocessing;
  const preprocessing = {
    inputSize: p.inputSize,
    layout: p.layout,
    channelOrder: p.channelOrder,
    mean: p.mean,
    std: p.std,
    ...(p.crop ? { crop: p.crop } : {}),
  };
  const { rowCount } = await client.query(
    `INSERT INTO facerec_collections (name, model_id, weights_sha256, dimension, preprocessing, metric, threshold, calibration)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING`,
    [
      name,
      embedder.modelId,
      embedder.weightsSha256 ?? null,
      d,
      JSON.stringify(preprocessing),
      o.metric,
      o.threshold,
      o.calibration ? JSON.stringify(o.calibration) : null,
    ],
  );
  return rowCount === 1;
}

/** How long {@link PostgresGalleryStore.createFrom}'s index build and statistics may take (one hour). */
const BUILD_TIMEOUT_MS = 3_600_000;

/**
 * A statement with its own read timeout (pg's per-query `query_timeout`, which its types leave out); 0 keeps the
 * pool's.
 */
function withTimeout(text: string, queryTimeoutMs: number): pg.QueryConfig {
  return { text, ...(queryTimeoutMs > 0 ? { query_timeout: queryTimeoutMs } : {}) } as pg.QueryConfig;
}

/** Creates the collection's partial HNSW index, in the caller's transaction. */
async function createIndex(
  client: pg.PoolClient,
  name: string,
  d: number,
  hnsw: { m?: number | undefined; efConstruction?: number | undefined },
  queryTimeoutMs = 0,
): Promise<void> {
  const params = [
    hnsw.m === undefined ? '' : `m = ${hnsw.m}`,
    hnsw.efConstruction === undefined ? '' : `ef_construction = ${hnsw.efConstruction}`,
  ].filter(Boolean);
  await client.query(
    withTimeout(
      `CREATE INDEX ${pg.escapeIdentifier(hnswIndexName(name))} ON facerec_examples
       USING hnsw ((embedding::vector(${d})) vector_ip_ops)${params.length ? ` WITH (${params.join(', ')})` : ''}
       WHERE collection = ${pg.escapeLiteral(name)}`,
      queryTimeoutMs,
    ),
  );
}

/**
 * Inserts prepared examples in the caller's transaction, {@link INSERT_BATCH} rows per statement, calling
 * `afterBatch` with the rows done after each. Returns the examples the collection held already (id → their
 * stored source), which are left as they are.
 */
async function insertExamples(
  client: pg.PoolClient,
  collection: string,
  rows: readonly { id: string; identity: string; source: string; embedding: Float32Array }[],
  afterBatch?: (done: number) => void,
): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  for (let first = 0; first < rows.length; first += INSERT_BATCH) {
    const batch = rows.slice(first, first + INSERT_BATCH);
    const params: unknown[] = [collection];
    const values = batch.map((e) => {
      params.push(e.id, e.identity, e.source, toVector(e.embedding));
      const n = params.length;
      return `($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::vector)`;
    });
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO facerec_examples (collection, id, identity, source, embedding)
       VALUES ${values.join(', ')} ON CONFLICT (collection, id) DO NOTHING RETURNING id`,
      params,
    );
    if (inserted.rows.length !== batch.length) {
      const fresh = new Set(inserted.rows.map((r) => r.id));
      const found = await client.query<{ id: string; source: string }>(
        'SELECT id, source FROM facerec_examples WHERE collection = $1 AND id = ANY($2::text[])',
        [collection, batch.filter((e) => !fresh.has(e.id)).map((e) => e.id)],
      );
      for (const { id, source } of found.rows) held.set(id, source);
    }
    afterBatch?.(first + batch.length);
  }
  return held;
}

/** {@link migrate}, telling `onMigrated` the names of the migrations applied (an operator sees the schema change). */
async function migrateAndTell(
  pool: pg.Pool,
  location: string,
  onMigrated: ((applied: readonly string[]) => void) | undefined,
): Promise<void> {
  const applied = await migrate(pool, { location });
  if (applied.length === 0 || !onMigrated) return;
  const names = new Map((await readMigrations()).map((m) => [m.version, m.name]));
  onMigrated(applied.map((v) => names.get(v) ?? String(v)));
}

/**
 * Refuses a collection holding rows no facerec write makes, which schema version 2's checks do not cover where
 * they could not be validated (rows stored before them) or were dropped: an identity named as an answer of the
 * pipeline (`no face`: an older facerec took it; `unknown` never), which a client could not tell from that
 * answer, or an example that is no unit vector (a longer one read as nearer every face than it is). Checked when
 * the store opens, so that a server or function refuses to start with what to do; the names by an index look-up,
 * the lengths by one scan of the collection only while the length check is not validated.
 */
async function refuseUnsoundRows(pool: pg.Pool, collection: string, location: string): Promise<void> {
  const { rows } = await pool.query<{ identity: string }>(
    // COLLATE "C": the collation of the identity index, so this is an index look-up, not a scan of the collection.
    'SELECT identity FROM facerec_examples WHERE collection = $1 AND identity COLLATE "C" = ANY($2) LIMIT 1',
    [collection, [NO_FACE_RESULT, UNKNOWN_IDENTITY]],
  );
  if (rows[0]) throw reservedNameError(rows[0].identity, collection, location);
  const [check] = (
    await pool.query<{ validated: boolean }>(
      `SELECT convalidated AS validated FROM pg_constraint
       WHERE conrelid = 'facerec_examples'::regclass AND conname = 'facerec_examples_unit_embedding'`,
    )
  ).rows;
  if (check?.validated) return;
  const [long] = (
    await pool.query<{ identity: string; length: number }>(
      `SELECT identity, vector_norm(embedding) AS length FROM facerec_examples
       WHERE collection = $1 AND NOT abs(vector_norm(embedding) - 1) < $2 LIMIT 1`,
      [collection, UNIT_TOLERANCE],
    )
  ).rows;
  if (!long) return;
  throw new GalleryFormatError(
    `an example of identity ${shownName(long.identity)} is not a unit vector (length ` +
      `${Number(long.length).toFixed(4)}): a row written outside facerec; remove such rows, e.g. DELETE FROM ` +
      `facerec_examples WHERE collection = ${pg.escapeLiteral(collection)} AND NOT abs(vector_norm(embedding) - 1) ` +
      '< 0.001, and add their photos again',
    { source: location, problem: 'invalid' },
  );
}

function reservedNameError(identity: string, collection: string, location: string): GalleryFormatError {
  return new GalleryFormatError(
    `the identity ${shownName(identity)} is named as an answer of the pipeline (stored by an older facerec), so a ` +
      'face recognised as it could not be told from that answer: rename it, e.g. ' +
      `UPDATE facerec_examples SET identity = 'new name' WHERE collection = ${pg.escapeLiteral(collection)} AND ` +
      `identity = ${pg.escapeLiteral(identity)}; or remove its examples (DELETE FROM facerec_examples WHERE ` +
      `collection = ${pg.escapeLiteral(collection)} AND identity = ${pg.escapeLiteral(identity)}) and add its ` +
      'photos under another name',
    { source: location, problem: 'invalid' },
  );
}

/**
 * A row's source as reads take it: at most {@link MAX_SOURCE_LENGTH} characters, a longer one (written outside
 * facerec, which never stores one) cut to its end as `storableSource` cuts one, so that a row of megabytes is
 * not read whole into every listing and snapshot.
 */
const BOUNDED_SOURCE = `CASE WHEN length(source) > ${MAX_SOURCE_LENGTH} THEN '…' || right(source, ${MAX_SOURCE_LENGTH - 1}) ELSE source END`;

/**
 * How far from 1 a stored embedding's length may be (schema version 2's check): float32 embeddings normalised by
 * facerec are within about 1e-6 of it.
 */
const UNIT_TOLERANCE = 1e-3;

/** An identity read from a row, for a message: escaped, and cut short (a row can hold any text). */
function shownName(identity: string): string {
  return JSON.stringify(visibleText(identity.length > 80 ? `${identity.slice(0, 80)}…` : identity));
}

/** A name for the collection's index that fits Postgres's 63 bytes whatever the collection is called. */
export function hnswIndexName(collection: string): string {
  return `facerec_hnsw_${createHash('sha256').update(collection, 'utf8').digest('hex').slice(0, 16)}`;
}

/** Query parameters of a store URL, and the option each sets. */
const URL_PARAMETERS = ['collection', 'search', 'ef_search', 'max_connections'] as const;

/**
 * Query parameters node-postgres (8.x: `pg-connection-string` and `ConnectionParameters`) reads from a
 * `postgres://` connection string given to a pool. Any other is refused: a misspelt `colection` would otherwise
 * open the default collection, and one node-postgres does not read (libpq's `connect_timeout`, `db`, `binary`)
 * would be ignored without a word.
 */
const CONNECTION_PARAMETERS: ReadonlySet<string> = new Set([
  'sslmode',
  'sslcert',
  'sslkey',
  'sslrootcert',
  'sslnegotiation',
  'ssl',
  'uselibpqcompat',
  'host',
  'port',
  'user',
  'password',
  'application_name',
  'fallback_application_name',
  'options',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'query_timeout',
]);

/** The connection parameters that are times in milliseconds. */
const TIMEOUT_PARAMETERS = [
  'query_timeout',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
] as const;

/** Parameters of libpq (and so of URLs hosting providers hand out) that node-postgres does not read from a URL. */
const LIBPQ_ONLY: ReadonlySet<string> = new Set([
  'channel_binding',
  'connect_timeout',
  'target_session_attrs',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'gssencmode',
  'krbsrvname',
  'passfile',
  'service',
  'sslcompression',
  'sslpassword',
  'requiressl',
  'load_balance_hosts',
  'hostaddr',
  'dbname',
  'client_encoding',
]);

/** What is wrong with the query parameters left in a store URL (facerec's own taken out), or `undefined`. */
function connectionParameterIssue(params: URLSearchParams): string | undefined {
  const keys = [...new Set(params.keys())];
  if (keys.includes('replication')) {
    return 'replication= would open a replication connection, on which the store cannot query: remove it';
  }
  const unknown = keys.filter((k) => !CONNECTION_PARAMETERS.has(k));
  if (!unknown.length) return undefined;
  // A password in the query holding an unencoded `&` would show its tail as a parameter name: none is named.
  const names = params.has('password')
    ? ['(not named: the URL holds a password in its query)']
    : unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40)));
  const libpq = unknown.filter((k) => LIBPQ_ONLY.has(k));
  return (
    `unknown query parameter${unknown.length === 1 ? '' : 's'} ${names.join(', ')}${unknown.length > 5 && !params.has('password') ? ', …' : ''} in the store URL` +
    (libpq.length && !params.has('password')
      ? ` (${libpq.map((k) => JSON.stringify(k)).join(', ')}: libpq's, which node-postgres does not read from a URL: remove ${libpq.length === 1 ? 'it' : 'them'})`
      : '') +
    `; facerec reads ${URL_PARAMETERS.join(', ')}, the connection ${[...CONNECTION_PARAMETERS].join(', ')}`
  );
}

/**
 * Opens `postgres://user:password@host:5432/database?collection=staff&search=hnsw&ef_search=400` with the
 * options of `openGalleryStore` (`@facerec/framework`), which calls it for `postgres://` and `postgresql://`
 * URLs. `collection` (default `default`), `search` (`hnsw` or `exact`), `ef_search` and `max_connections`
 * (the pool's size) are taken out of the URL; the rest of it (`sslmode`, …) is the connection string, whose query parameters must be ones
 * node-postgres reads (else `InvalidOptionsError`). `create` defaults to false.
 */
export async function openGalleryStoreFromUrl(
  url: string,
  options: OpenGalleryStoreOptions,
): Promise<PostgresGalleryStore> {
  let store: PostgresGalleryStore | undefined;
  store = await PostgresGalleryStore.open(storeOptionsFromUrl(url, options, () => store));
  return store;
}

/**
 * {@link PostgresGalleryStore.createFrom} for a store URL as {@link openGalleryStoreFromUrl} takes it: the
 * collection made from `gallery` in one transaction (`facerec gallery copy` into Postgres).
 */
export async function createCollectionFromUrl(
  url: string,
  gallery: FileGallery,
  options: {
    readonly onProgress?: (done: number, total: number) => void;
    readonly onIndexing?: () => void;
    readonly signal?: AbortSignal;
    readonly logger?: OpenGalleryStoreOptions['logger'];
  } = {},
): Promise<PostgresGalleryStore> {
  const { onProgress, onIndexing, signal, logger } = options;
  let store: PostgresGalleryStore | undefined;
  const { create, ...opened } = storeOptionsFromUrl(url, logger ? { logger } : {}, () => store);
  store = await PostgresGalleryStore.createFrom(opened, gallery, {
    ...(onProgress ? { onProgress } : {}),
    ...(onIndexing ? { onIndexing } : {}),
    ...(signal ? { signal } : {}),
  });
  return store;
}

/** The store's options from its URL and `openGalleryStore`'s options; `current` is the store once open. */
function storeOptionsFromUrl(
  url: string,
  options: OpenGalleryStoreOptions,
  current: () => PostgresGalleryStore | undefined,
): PostgresGalleryStoreOptions {
  // Not shown when refused: it may hold a password.
  const unparsable = new InvalidOptionsError(
    '@facerec/gallery-postgres',
    'the store URL is not a valid postgres:// URL (percent-encode @, /, ?, # and : in a password, or use PGPASSWORD)',
  );
  // An `@` after the first `/`, `?` or `#` of the authority: a password holding one of them unencoded, which a
  // URL parser reads as the end of the host (`postgres://app:12?secret@db/…` is host "app", port 12, and the
  // password would be shown as a query string). Refused rather than guessed.
  const authority = url.slice(url.indexOf('://') + 3);
  const delimiter = authority.search(/[/?#]/);
  if (delimiter !== -1 && authority.lastIndexOf('@') > delimiter) throw unparsable;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw unparsable;
  }
  const take = (name: (typeof URL_PARAMETERS)[number]) => {
    if (parsed.searchParams.getAll(name).length > 1) {
      throw new InvalidOptionsError(
        '@facerec/gallery-postgres',
        `?${name}= is given more than once in the store URL`,
      );
    }
    const value = parsed.searchParams.get(name) ?? undefined;
    parsed.searchParams.delete(name);
    return value;
  };
  const { logger } = options;
  const collection = take('collection');
  if (collection === '') {
    throw new InvalidOptionsError(
      '@facerec/gallery-postgres',
      '?collection= needs a name (or leave it out: default)',
    );
  }
  const search = take('search');
  const efSearch = take('ef_search');
  const maxConnections = take('max_connections');
  const connectionIssue = connectionParameterIssue(parsed.searchParams);
  if (connectionIssue) throw new InvalidOptionsError('@facerec/gallery-postgres', connectionIssue);
  // node-postgres reads these as numbers without a check: `query_timeout=abc` became no answer ever counted as
  // on time, reported as a server out of reach (which callers retry for ever) instead of the typo it is.
  for (const name of TIMEOUT_PARAMETERS) {
    const values = parsed.searchParams.getAll(name);
    if (values.length > 1) {
      throw new InvalidOptionsError(
        '@facerec/gallery-postgres',
        `?${name}= is given more than once in the store URL`,
      );
    }
    if (values.length === 1 && !/^\d{1,9}$/.test(values[0]!)) {
      throw new InvalidOptionsError(
        '@facerec/gallery-postgres',
        `?${name}= must be a whole number of milliseconds (0: none), got ${JSON.stringify(values[0]!.slice(0, 20))}`,
      );
    }
  }
  if (search !== undefined && search !== 'exact' && search !== 'hnsw') {
    throw new InvalidOptionsError('@facerec/gallery-postgres', `search must be exact or hnsw, got ${search}`);
  }
  // Named as the URL names it (the option's schema would say "efSearch: … received NaN").
  if (efSearch !== undefined && (!/^[1-9]\d{0,3}$/.test(efSearch) || Number(efSearch) > MAX_EF_SEARCH)) {
    throw new InvalidOptionsError(
      '@facerec/gallery-postgres',
      `?ef_search= must be a whole number from 1 to ${MAX_EF_SEARCH}, got ${JSON.stringify(efSearch.slice(0, 20))}`,
    );
  }
  if (
    maxConnections !== undefined &&
    (!/^[1-9]\d{0,3}$/.test(maxConnections) || Number(maxConnections) > 1000)
  ) {
    throw new InvalidOptionsError(
      '@facerec/gallery-postgres',
      `?max_connections= must be a whole number from 1 to 1000, got ${JSON.stringify(maxConnections.slice(0, 20))}`,
    );
  }
  return {
    connectionString: parsed.toString(),
    create: options.create ?? false,
    ...(collection ? { collection } : {}),
    ...(search ? { search } : {}),
    ...(efSearch ? { efSearch: Number(efSearch) } : {}),
    ...(maxConnections ? { maxConnections: Number(maxConnections) } : {}),
    ...(options.embedder ? { embedder: options.embedder } : {}),
    ...(options.metric ? { metric: options.metric } : {}),
    ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    ...(options.refreshSeconds !== undefined ? { refreshSeconds: options.refreshSeconds } : {}),
    ...(logger
      ? {
          // By the error's code, never its message (which can quote the row).
          onReloadError: (error: Error) => {
            const code = (error as { code?: unknown }).code;
            // A server's error by its SQLSTATE (26000: a prepared statement the session does not hold).
            const reason =
              typeof code === 'string'
                ? FacerecError.isInstance(error)
                  ? code
                  : `SQLSTATE ${code}`
                : error.name;
            logger.warn(
              reason === 'GALLERY_UNREACHABLE'
                ? 'gallery store unreachable; keeping the loaded settings'
                : 'gallery settings refresh refused; keeping the loaded ones',
              { location: current()?.location, reason }, // the location without the password
            );
          },
          onMigrated: (applied: readonly string[]) =>
            logger.info('gallery store schema migrated', {
              location: collectionLocation(parsed.toString(), collection ?? 'default'),
              applied,
            }),
          onReachableAgain: () =>
            logger.info('gallery store reachable again', { location: current()?.location }),
          onConnectionError: (error: Error) =>
            logger.warn('gallery store connection lost; the next query connects again', {
              location: current()?.location ?? collectionLocation(parsed.toString(), collection ?? 'default'),
              reason: (error as { code?: string }).code ?? 'connection lost',
            }),
        }
      : {}),
  };
}
