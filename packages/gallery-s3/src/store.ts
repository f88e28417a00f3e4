import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import {
  type DistanceMetric,
  FacerecError,
  FileGallery,
  type GalleryEmbedderInfo,
  type GalleryStoreLogger,
  GalleryWriteConflictError,
  InvalidOptionsError,
  type OpenGalleryStoreOptions,
  parseOptions,
  SnapshotGalleryStore,
  type StoredGalleryText,
} from '@facerec/framework';
import {
  galleryTooLarge,
  galleryUnreachable,
  logGallerySwap,
  MAX_GALLERY_FILE_BYTES,
  refusalDetails,
  swapDetails,
  thresholdSchema,
  unreachableCode,
} from '@facerec/framework/internal';
import { z } from 'zod';

/** Where a gallery file is: a bucket and a key. */
export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/**
 * Parses `s3://bucket/key/of/gallery.json`.
 * @throws InvalidOptionsError for anything else.
 */
export function parseS3Url(url: string): S3Location {
  // The scheme in any case (URL schemes are case-insensitive); the bucket name in lowercase, as S3 has it.
  const match = /^[sS]3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(url);
  if (!match) {
    throw new InvalidOptionsError(
      '@facerec/gallery-s3',
      `expected s3://bucket/key, got ${JSON.stringify(url)} (a bucket name is 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit; the key is not empty)`,
    );
  }
  const key = match[2]!;
  const issue = objectKeyIssue(key);
  if (issue)
    throw new InvalidOptionsError('@facerec/gallery-s3', `the key of ${JSON.stringify(url)} ${issue}`);
  return { bucket: match[1]!, key };
}

/**
 * What is wrong with an object key, or `undefined`. S3 takes `.`, `..` and empty segments as they are, but the
 * SDK puts them into the request's path, which an S3-compatible server or a proxy in front of one may resolve
 * (`s3://faces/../other/g.json` was written to bucket `other` by s3rver); `?` and `#` read as a version pin or a
 * fragment that S3 would take as part of the key.
 */
export function objectKeyIssue(key: string): string | undefined {
  if (Buffer.byteLength(key, 'utf8') > 1024) return 'is longer than S3 takes (1,024 bytes)';
  if (key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return "has an empty, '.' or '..' segment (a leading, doubled or trailing '/', or a relative path)";
  }
  if (/[?#]/.test(key))
    return "holds '?' or '#' (an S3 URL takes no query or fragment: the version is the latest)";
  if (/\p{Cc}/u.test(key)) return 'holds a control character';
  return undefined;
}

/** Options of {@link S3GalleryStore.open}. */
export interface S3GalleryStoreOptions {
  /** `s3://bucket/key`; or give `bucket` and `key`. */
  readonly url?: string;
  readonly bucket?: string;
  readonly key?: string;
  /** An S3 client you made; by default one is made from the environment (region, credentials). */
  readonly client?: S3Client;
  /**
   * An S3-compatible endpoint for the default client (MinIO, s3rver, LocalStack), addressed path-style
   * (`endpoint/bucket/key`).
   */
  readonly endpoint?: string;
  /** Region of the default client. Default: the environment's. */
  readonly region?: string;
  /**
   * The embedder the gallery is for: the stored file must have been enrolled with it
   * (`EmbedderMismatchError`), and so must every later version, or it is refused. A missing object is created
   * for it. Without it, the object must exist, and later versions must match the first one's embedder.
   */
  readonly embedder?: GalleryEmbedderInfo;
  /** Create the object when it does not exist (needs `embedder`). Default true. */
  readonly create?: boolean;
  /** For a new object. Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** For a new object. Default 0 (uncalibrated). */
  readonly threshold?: number;
  /**
   * Searches re-check the object's ETag (a conditional GET: nothing is downloaded when it did not change) at
   * most this often, in seconds. Default 60; 0 checks on every call.
   */
  readonly refreshSeconds?: number;
  /**
   * How long a search waits for that re-check before it answers from the version it holds, in seconds (the
   * re-check goes on, and a new version it finds serves the searches after it). S3 answers in tens of
   * milliseconds; an endpoint out of reach takes about 8 s to give up, which searches then do not wait for.
   * Default 1.
   */
  readonly refreshWaitSeconds?: number;
  /**
   * Write to a server that ignores S3's conditional writes (`If-Match`, `If-None-Match: *`), such as stock
   * s3rver. Before its first write a store handle checks that the server refuses a write whose condition does
   * not hold (one PUT of an empty object to `<key>.facerec-write-check` with an ETag no object has: answered
   * 412 or 404, it creates nothing; AWS S3 itself is not checked); on a server that ignores the condition two
   * writers at once silently lose one's change, so by default the write is refused
   * (`GALLERY_UNCONDITIONAL_WRITES`). `true`: write anyway, for a server only one writer uses. Default false.
   */
  readonly allowUnconditionalWrites?: boolean;
  /** Told about swaps and refused versions (never with embeddings or file content). Default: silent. */
  readonly logger?: GalleryStoreLogger;
  /** Milliseconds since some epoch (default `Date.now`); tests pass a fake clock. */
  readonly now?: () => number;
}

const optionsSchema = z
  .strictObject({
    url: z.string().optional(),
    bucket: z.string().min(3).optional(),
    key: z
      .string()
      .min(1)
      .superRefine((key, ctx) => {
        const issue = objectKeyIssue(key);
        if (issue) ctx.addIssue({ code: 'custom', message: `the key ${issue}` });
      })
      .optional(),
    client: z.custom<S3Client>((v) => typeof v === 'object' && v !== null).optional(),
    // The server's root: a path would silently become a prefix of every key (objects are endpoint/bucket/key).
    endpoint: z
      .url()
      .refine(
        (v) => {
          const u = new URL(v);
          return u.pathname === '/' && !u.search && !u.hash;
        },
        {
          message:
            'give the server without a path, e.g. http://127.0.0.1:9000 (objects are endpoint/bucket/key)',
        },
      )
      // The SDK signs with the credentials of its chain and ignores a URL's; ones written there would only be
      // shown in every message and log line that names the server.
      .refine((v) => !new URL(v).username && !new URL(v).password, {
        message:
          'give the server without user:password (credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the SDK credential chain)',
      })
      .optional(),
    region: z.string().min(1).optional(),
    embedder: z.custom<GalleryEmbedderInfo>((v) => typeof v === 'object' && v !== null).optional(),
    create: z.boolean().default(true),
    metric: z.enum(['euclidean', 'cosine']).optional(),
    threshold: thresholdSchema.optional(),
    refreshSeconds: z.number().min(0).default(60),
    refreshWaitSeconds: z.number().min(0).max(60).default(1),
    allowUnconditionalWrites: z.boolean().default(false),
    logger: z
      .custom<GalleryStoreLogger>(
        (v) => typeof v === 'object' && v !== null && typeof (v as GalleryStoreLogger).warn === 'function',
      )
      .optional(),
    now: z.custom<() => number>((v) => typeof v === 'function').optional(),
  })
  .refine((o) => (o.url === undefined) !== (o.bucket === undefined || o.key === undefined), {
    message: 'give url, or bucket and key',
  });

const silent: GalleryStoreLogger = { info: () => undefined, warn: () => undefined };

/**
 * What an S3 request's failure means for the store, naming it and the server (see `#server`):
 * S3 out of reach (`GALLERY_UNREACHABLE`, tried again later), no credentials (an `InvalidOptionsError` saying
 * what to set), a missing bucket, access refused; anything else (an endpoint that is no S3 server: TLS against
 * plain HTTP, an answer that is not S3's XML) as `GALLERY_S3_ERROR` with the SDK's message.
 */
function s3Failure(error: unknown, location: string, bucket: string, server: string): unknown {
  const network = unreachableCode(error, new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER']));
  if (network !== undefined || (error as Error | undefined)?.name === 'TimeoutError') {
    // Without an endpoint the request went to AWS S3: one meant for MinIO or s3rver needs the endpoint named.
    const why = `${network ?? 'timed out'}${server === 'AWS S3' ? '; for an S3-compatible server (MinIO, s3rver, LocalStack) give its URL: `endpoint` of S3GalleryStore.open, `s3Endpoint` of openGalleryStore, $FACEREC_S3_ENDPOINT for the CLI and the Lambda runtime' : ''}`;
    return galleryUnreachable(server, location, why, error);
  }
  const name = (error as Error | undefined)?.name;
  if (name === 'CredentialsProviderError') {
    return new InvalidOptionsError(
      '@facerec/gallery-s3',
      `no AWS credentials for ${location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (on Lambda: the function's role)`,
      { cause: error },
    );
  }
  const status = statusOf(error);
  if (status === 404 && name === 'NoSuchBucket') {
    return new FacerecError(
      'GALLERY_BUCKET_MISSING',
      `${location}: there is no bucket ${bucket}${server.startsWith('the S3 endpoint') ? ` at ${server}` : ''}`,
      {
        cause: error,
      },
    );
  }
  if (status !== undefined && status >= 500) {
    // S3 busy or failing (503 SlowDown, 500 InternalError), after the SDK's retries: it can pass.
    return galleryUnreachable(server, location, `HTTP ${status} ${name ?? 'error'}`, error);
  }
  if (status === 403) {
    // S3 answers 403, not 404, for an object that does not exist when the caller may not list the bucket; a key
    // or signature refused (InvalidAccessKeyId, SignatureDoesNotMatch) says nothing of the object.
    const missing =
      name === 'AccessDenied' || name === undefined
        ? ' (or there is no such object, and the credentials may not list the bucket: s3:ListBucket)'
        : name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch'
          ? ': check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile or role that gives them)'
          : '';
    return new FacerecError(
      'GALLERY_ACCESS_DENIED',
      `${location}: ${server} refused access (${name})${missing}`,
      {
        cause: error,
      },
    );
  }
  // Already said (a gallery too large), or said by `open` (no region).
  if (FacerecError.isInstance(error) || (error as Error | undefined)?.message === 'Region is missing')
    return error;
  // The first line, at most 200 characters: the SDK's XML parse error adds a line about a hidden field of its
  // error object, which a CLI user cannot inspect.
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
  return new FacerecError(
    'GALLERY_S3_ERROR',
    `${location}: ${server} answered what is not an S3 answer, or failed (${status === undefined ? '' : `HTTP ${status} `}${name ?? 'error'}: ${message.slice(0, 200)})`,
    { cause: error },
  );
}

/** The HTTP status of an S3 error, or `undefined` for another error. */
const statusOf = (error: unknown) =>
  error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;

/**
 * A gallery file in S3, for AWS Lambda: loaded once at init; searches re-check the object's ETag at most every
 * `refreshSeconds` with a conditional GET (`If-None-Match`: a `304` costs no download; a search waits for it at
 * most `refreshWaitSeconds`, then answers from the version it holds) and swap a new version in atomically (one
 * assignment: a search uses the old gallery or the new one), so enrolling someone is an upload, not a redeploy.
 * A new version that is corrupt or from another embedder is refused, the old one kept, and a warning logged
 * (with the ETag and the reason, never the content).
 *
 * It is also a full {@link GalleryStore} (the CLI's `s3://` stores): a mutation downloads the current version,
 * applies the change and uploads it with `If-Match: <ETag>` (S3 conditional writes), starting again when
 * another writer got there first. An S3-compatible server that ignores `If-Match` loses that protection.
 *
 * @example
 * const gallery = await S3GalleryStore.open({ url: 's3://faces/staff.gallery.json', embedder, logger });
 * const [match] = await gallery.match([embedding]); // re-checks the ETag at most every 60 s
 */
export class S3GalleryStore extends SnapshotGalleryStore {
  readonly bucket: string;
  readonly key: string;
  readonly location: string;
  readonly #client: S3Client;
  readonly #ownsClient: boolean;
  readonly #logger: GalleryStoreLogger;
  /**
   * `AWS S3` (the default client), `S3` (a client given, its endpoint unknown here), or `the S3 endpoint <url>`
   * for an S3-compatible server: for messages.
   */
  readonly #server: string;
  /** Whether the server honours conditional writes: checked once, before the first write (see the option). */
  #conditionalWrites: Promise<void> | undefined;

  private constructor(o: z.output<typeof optionsSchema>, logger: GalleryStoreLogger) {
    super({
      embedder: o.embedder,
      reloadIntervalMs: o.refreshSeconds * 1000,
      refreshWaitMs: o.refreshWaitSeconds * 1000,
      now: o.now,
    });
    const where = o.url ? parseS3Url(o.url) : { bucket: o.bucket!, key: o.key! };
    this.bucket = where.bucket;
    this.key = where.key;
    this.location = `s3://${this.bucket}/${this.key}`;
    this.#ownsClient = !o.client;
    this.#client = o.client ?? new S3Client(defaultClientConfig(o));
    this.#logger = logger;
    if (o.allowUnconditionalWrites) this.#conditionalWrites = Promise.resolve();
    // The AWS SDK takes an endpoint from $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL too.
    const sdkEndpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
    this.#server = o.endpoint
      ? `the S3 endpoint ${o.endpoint}`
      : o.client
        ? 'S3'
        : sdkEndpoint
          ? `the S3 endpoint ${withoutCredentials(sdkEndpoint)} (from $AWS_ENDPOINT_URL${process.env.AWS_ENDPOINT_URL_S3 ? '_S3' : ''})`
          : 'AWS S3';
  }

  /**
   * Loads the gallery (creating an empty one for `embedder` when the object does not exist).
   * @throws GalleryFormatError when the object is not a valid gallery; EmbedderMismatchError when it was
   *   enrolled with another embedder; InvalidOptionsError for bad options, or no object and no embedder.
   *   S3 errors (access denied, no such bucket) propagate.
   */
  static async open(options: S3GalleryStoreOptions): Promise<S3GalleryStore> {
    const o = parseOptions(optionsSchema, options, '@facerec/gallery-s3');
    const logger = o.logger ?? silent;
    const store = new S3GalleryStore(o, logger);
    const started = performance.now();
    const { embedder } = o;
    try {
      await store.initialise(
        embedder &&
          o.create &&
          (() => FileGallery.create({ embedder, metric: o.metric, threshold: o.threshold, identities: [] })),
      );
    } catch (error) {
      await store.close();
      // The SDK's bare "Region is missing" (no region option, AWS_REGION or profile): say what to set.
      if (!o.client && error instanceof Error && error.message === 'Region is missing') {
        throw new InvalidOptionsError(
          '@facerec/gallery-s3',
          `no AWS region for ${store.location}: set AWS_REGION (or a region in your AWS profile), or the region option`,
          { cause: error },
        );
      }
      throw error;
    }
    logger.info('gallery loaded', {
      location: store.location,
      etag: store.version,
      identities: store.gallery.size,
      examples: store.gallery.exampleCount,
      ms: Math.round(performance.now() - started),
    });
    return store;
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.#ownsClient) this.#client.destroy();
  }

  protected parse(text: string): Promise<FileGallery> {
    return FileGallery.parseInSlices(text, { source: this.location });
  }

  protected async read(known: string | undefined): Promise<StoredGalleryText | 'unchanged' | 'missing'> {
    try {
      const object = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          ...(known ? { IfNoneMatch: known } : {}),
        }),
        { requestTimeout: S3_READ_TIMEOUT_MS },
      );
      if (!object.Body || !object.ETag) throw new Error(`${this.location}: S3 returned no body or ETag`);
      const size = object.ContentLength ?? 0;
      if (size > MAX_GALLERY_FILE_BYTES) {
        // Not read: the connection is let go at once.
        (object.Body as { destroy?: () => void }).destroy?.();
        throw galleryTooLarge(size, this.location);
      }
      return { version: object.ETag, text: await object.Body.transformToString('utf8') };
    } catch (error) {
      const status = statusOf(error);
      if (status === 304) return 'unchanged';
      // Only S3's "no such key" is a missing gallery: a missing bucket, or a 404 from a server that is not
      // S3, would otherwise be offered to be created.
      if (status === 404 && (error as Error).name === 'NoSuchKey') return 'missing';
      throw s3Failure(error, this.location, this.bucket, this.#server);
    }
  }

  protected async write(text: Iterable<string>, replacing: string | undefined): Promise<string> {
    // Checked again after a failed check (the server may have been out of reach).
    this.#conditionalWrites ??= this.#checkConditionalWrites().catch((error: unknown) => {
      this.#conditionalWrites = undefined;
      throw error;
    });
    await this.#conditionalWrites;
    try {
      const put = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: [...text].join(''),
          ContentType: 'application/json',
          ...(replacing ? { IfMatch: replacing } : { IfNoneMatch: '*' }),
        }),
      );
      if (!put.ETag) throw new Error(`${this.location}: S3 returned no ETag for the upload`);
      return put.ETag;
    } catch (error) {
      // 412: the object is no longer `replacing`; 409: a concurrent conditional write to the same key.
      const status = statusOf(error);
      if (status === 412 || status === 409)
        throw new GalleryWriteConflictError(this.location, { cause: error });
      throw s3Failure(error, this.location, this.bucket, this.#server);
    }
  }

  /**
   * Refuses (`GALLERY_UNCONDITIONAL_WRITES`) a server that stores a PUT whose `If-Match` names an ETag no
   * object has; S3 answers 412 (or 404, no such key) and stores nothing. AWS S3 itself honours conditional
   * writes (since 2024) and is not asked. A probe object that a server did store is deleted again (when
   * allowed).
   */
  async #checkConditionalWrites(): Promise<void> {
    const custom = (this.#client.config as { isCustomEndpoint?: boolean }).isCustomEndpoint;
    if (this.#server === 'AWS S3' || (this.#server === 'S3' && custom === false)) return;
    const probe = { Bucket: this.bucket, Key: `${this.key}.facerec-write-check` };
    try {
      await this.#client.send(
        new PutObjectCommand({ ...probe, Body: new Uint8Array(0), IfMatch: '"facerec-write-check"' }),
      );
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 404) return;
      // No right to write the probe's key (a policy for the gallery's key alone): not known, so not refused.
      if (status === 403) return;
      throw s3Failure(error, this.location, this.bucket, this.#server);
    }
    await this.#client.send(new DeleteObjectCommand(probe)).catch(() => undefined);
    throw new FacerecError(
      'GALLERY_UNCONDITIONAL_WRITES',
      `${this.location}: ${this.#server === 'S3' ? 'the S3 server' : this.#server} ignores conditional writes (it stored a PUT whose If-Match did not hold), ` +
        'so two writers at once would silently lose one change; nothing was written. Use a server that honours ' +
        'them (AWS S3, MinIO; stock s3rver does not); for a server only one writer uses, allowUnconditionalWrites ' +
        '($FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES=1 for the facerec CLI)',
    );
  }

  protected override refused(error: Error): void {
    const unreachable = FacerecError.isInstance(error) && error.code === 'GALLERY_UNREACHABLE';
    this.#logger.warn(
      unreachable
        ? 'gallery store unreachable; keeping the loaded version'
        : 'gallery update refused; keeping the loaded version',
      {
        location: this.location,
        loaded_etag: this.version,
        ...refusalDetails(error),
      },
    );
  }

  protected override reachable(): void {
    this.#logger.info('gallery store reachable again', { location: this.location, etag: this.version });
  }

  protected override swapped(before: string | undefined, previous: FileGallery | undefined): void {
    logGallerySwap(
      this.#logger,
      { location: this.location, etag: this.version, previous_etag: before },
      swapDetails(this.gallery, previous),
    );
  }
}

function defaultClientConfig(o: {
  endpoint?: string | undefined;
  region?: string | undefined;
}): S3ClientConfig {
  return {
    ...(o.region ? { region: o.region } : {}),
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
    // The SDK sets no timeout: an endpoint that accepts and never answers held a Lambda init, or a search
    // waiting on a refresh, until the function timed out. Connecting, and a socket that goes quiet (a stalled
    // download or upload: one moving data is never cut short), are bounded here; a read's wait for the
    // response's headers by S3_READ_TIMEOUT_MS.
    requestHandler: { connectionTimeout: 2_000, socketTimeout: 10_000, throwOnRequestTimeout: true },
    maxAttempts: 2,
  };
}

/**
 * A read's wait for S3's answer (its headers: the body's download is not bounded by it), per attempt: S3 answers
 * in tens of milliseconds, and two attempts of a silent endpoint fail in about 8 s, within Lambda's 10 s init,
 * as `GALLERY_UNREACHABLE`.
 */
const S3_READ_TIMEOUT_MS = 4_000;

/**
 * Opens `s3://bucket/key` with the options of `openGalleryStore` (`@facerec/framework`), which calls it for
 * `s3://` URLs: `refreshSeconds` default 60, `create` default false, `s3Endpoint` for an S3-compatible server.
 */
export function openGalleryStoreFromUrl(
  url: string,
  options: OpenGalleryStoreOptions,
): Promise<S3GalleryStore> {
  return S3GalleryStore.open({
    url,
    create: options.create ?? false,
    refreshSeconds: options.refreshSeconds ?? 60,
    ...(options.embedder ? { embedder: options.embedder } : {}),
    ...(options.metric ? { metric: options.metric } : {}),
    ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    ...(options.s3Endpoint ? { endpoint: options.s3Endpoint } : {}),
    ...(options.s3AllowUnconditionalWrites ? { allowUnconditionalWrites: true } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** `url` without a user name or password, for messages (as it is when it is no URL). */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url;
  }
}
