import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { DistanceMetric, GalleryEmbedderInfo } from '../contracts/gallery.js';
import type { GalleryStore } from '../contracts/gallery-store.js';
import { InvalidOptionsError } from '../errors.js';
import { LOCK_STALE_MS } from '../fs.js';
import { importOptionalPackage } from '../optional-import.js';
import { parseOptions } from '../options.js';
import { refusalDetails } from './errors.js';
import { FileGalleryStore } from './file-store.js';
import { thresholdSchema } from './format.js';
import { logGallerySwap } from './snapshot-store.js';

/** Where a gallery store reports what it did (swaps, refused versions); `console` and Powertools fit. */
export interface GalleryStoreLogger {
  // A rest parameter, not an optional one: Powertools' Logger (`...extraInput`) only fits this form.
  info(message: string, ...details: Record<string, unknown>[]): void;
  warn(message: string, ...details: Record<string, unknown>[]): void;
}

/** Options of {@link openGalleryStore}, for every kind of store. */
export interface OpenGalleryStoreOptions {
  /**
   * The embedder the store is for: an existing store must hold its embeddings (`EmbedderMismatchError`), and
   * a new one is created for it when `create` is set.
   */
  readonly embedder?: GalleryEmbedderInfo;
  /** Create the store (empty, for `embedder`) when it does not exist. Default false: a missing store is an error. */
  readonly create?: boolean;
  /** For a new store. Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** For a new store. Default 0 (uncalibrated). */
  readonly threshold?: number;
  /**
   * File and S3 stores: how often searches look for another writer's version, in seconds (a `stat`, a
   * conditional GET). Default 1 for a file, 60 for S3. A Postgres store's examples are always current; this is
   * how often it reads the threshold and calibration again (default 1).
   */
  readonly refreshSeconds?: number;
  /** S3 stores: an S3-compatible endpoint (path-style), e.g. MinIO. Default: AWS S3. */
  readonly s3Endpoint?: string;
  /**
   * S3 stores: write to an S3-compatible server that ignores conditional writes (stock s3rver), which is
   * otherwise refused (`GALLERY_UNCONDITIONAL_WRITES`): for a server only one writer uses. Default false.
   */
  readonly s3AllowUnconditionalWrites?: boolean;
  readonly logger?: GalleryStoreLogger;
}

const openOptionsSchema = z.strictObject({
  embedder: z.custom<GalleryEmbedderInfo>((v) => typeof v === 'object' && v !== null).optional(),
  create: z.boolean().optional(),
  metric: z.enum(['euclidean', 'cosine']).optional(),
  threshold: thresholdSchema.optional(),
  refreshSeconds: z.number().min(0).optional(),
  s3Endpoint: z.string().optional(),
  s3AllowUnconditionalWrites: z.boolean().optional(),
  logger: z.custom<GalleryStoreLogger>((v) => typeof v === 'object' && v !== null).optional(),
});

/** A store package's opener: what `@facerec/gallery-s3` and `@facerec/gallery-postgres` export. */
export type GalleryStoreOpener = (url: string, options: OpenGalleryStoreOptions) => Promise<GalleryStore>;

/** URL schemes served by a store package, and the package. Packages are optional: loaded only when used. */
export const GALLERY_STORE_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  's3:': '@facerec/gallery-s3',
  'postgres:': '@facerec/gallery-postgres',
  'postgresql:': '@facerec/gallery-postgres',
});

/**
 * Opens a gallery store by URL: a path or `file:` URL (the file store, {@link FileGalleryStore}),
 * `s3://bucket/key` (`@facerec/gallery-s3`), or `postgres://user:password@host/db?collection=name`
 * (`@facerec/gallery-postgres`; see its `openGalleryStoreFromUrl` for the query parameters). The store
 * packages are imported only when their scheme is used, so only the one in use needs to be installed.
 *
 * @throws InvalidOptionsError for an unknown scheme, or a store package that is not installed (naming it).
 * @example
 * const store = await openGalleryStore(process.env.GALLERY_URL!, { embedder, create: true });
 */
export async function openGalleryStore(
  url: string,
  options: OpenGalleryStoreOptions = {},
): Promise<GalleryStore> {
  // Checked here for every kind of store: a misspelt key (`refreshSecs`) would otherwise be ignored silently
  // (each store validates the values it takes).
  parseOptions(openOptionsSchema, options, 'openGalleryStore');
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url)?.[1]?.toLowerCase();
  // `s3:/bucket/key` or `s3:bucket/key` would otherwise be taken for a file path, and fail on a folder "s3:".
  const oneSlash = /^(s3|postgres|postgresql):(?!\/\/)/i.exec(url)?.[1]?.toLowerCase();
  if (oneSlash) {
    throw new InvalidOptionsError(
      'gallery store',
      `${oneSlash === 's3' ? 'an' : 'a'} ${oneSlash}: URL needs two slashes after the scheme (${oneSlash === 's3' ? 's3://bucket/key' : `${oneSlash}://user@host/database?collection=name`})`,
    );
  }
  // `file:name.json` would otherwise be read as a file of that name (and a URL parser reads it from the root).
  if (scheme === undefined && /^file:/i.test(url)) {
    throw new InvalidOptionsError(
      'gallery store',
      'a file: URL is absolute (file:///folder/gallery.json); for a relative path give the path itself',
    );
  }
  // A libpq keyword string (`host=db password=…`) would be taken for a file name and shown in messages.
  if (scheme === undefined && /(^|\s)(host|hostaddr|dbname|user|password|port|sslmode)\s*=/i.test(url)) {
    throw new InvalidOptionsError(
      'gallery store',
      'a libpq keyword string is not a store location; give a Postgres store as a URL: ' +
        'postgres://user@host:5432/database?collection=name (the password from PGPASSWORD or the URL)',
    );
  }
  if (scheme === undefined || scheme === 'file:') {
    let file = url;
    try {
      if (scheme) file = fileURLToPath(url);
    } catch (error) {
      // file://folder/g.json (two slashes: "folder" read as a host) is the usual slip.
      throw new InvalidOptionsError(
        'gallery store',
        `${(error as Error).message}: a file URL has three slashes before an absolute path (file:///folder/gallery.json)`,
        { cause: error },
      );
    }
    return FileGalleryStore.open(file, {
      ...(options.embedder ? { embedder: options.embedder } : {}),
      create: options.create ?? false,
      ...(options.metric ? { metric: options.metric } : {}),
      ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
      reloadIntervalMs: Math.round((options.refreshSeconds ?? 1) * 1000),
      // A search waits this long for a rewritten file being read, then answers from the version held: a small
      // gallery is read well within it (the next search sees a change), a large one does not hold up searches.
      refreshWaitMs: FILE_REFRESH_WAIT_MS,
      ...(options.logger
        ? {
            onReloadError: reportTo(options.logger, file),
            onReload: logGallerySwap.bind(undefined, options.logger, { location: file }),
            onLockWait: lockWaitTo(options.logger, file),
          }
        : {}),
    });
  }
  const packageName = GALLERY_STORE_PACKAGES[scheme];
  if (!packageName) {
    throw new InvalidOptionsError(
      'gallery store',
      `unknown store URL scheme "${scheme}"; valid: a path, file:, ${Object.keys(GALLERY_STORE_PACKAGES).join(', ')}`,
    );
  }
  const module = await importOptionalPackage<{ readonly openGalleryStoreFromUrl?: GalleryStoreOpener }>(
    packageName,
    (name) => import(name),
    'gallery store',
    `the ${scheme}// store`,
  );
  if (typeof module.openGalleryStoreFromUrl !== 'function') {
    throw new InvalidOptionsError(
      'gallery store',
      `${packageName} does not export openGalleryStoreFromUrl()`,
    );
  }
  return module.openGalleryStoreFromUrl(url, options);
}

/** How long a search of a file store opened by URL waits for a rewritten file being read (see above). */
const FILE_REFRESH_WAIT_MS = 250;

/** A change waiting for another writer's lock on the gallery file, said (it can last 10 s: a dead writer's). */
function lockWaitTo(logger: GalleryStoreLogger, file: string): () => void {
  return () =>
    logger.warn('gallery file locked by another writer; waiting for it', {
      location: file,
      lock: `${file}.lock`,
      stale_after_seconds: LOCK_STALE_MS / 1000,
    });
}

/** Logs a refused version of a file store: why, never the error's message (which can quote the file). */
function reportTo(logger: GalleryStoreLogger, file: string): (error: Error) => void {
  return (error) =>
    logger.warn('gallery update refused; keeping the loaded version', {
      location: file,
      ...refusalDetails(error),
    });
}
