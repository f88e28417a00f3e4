import {
  addFacesFromPhotos,
  type DecodeLimits,
  EmbedderMismatchError,
  type ExamplePage,
  type FaceDetector,
  type FaceEmbedder,
  FacerecError,
  FacerecInputError,
  GalleryFormatError,
  type GalleryStore,
  ImageTooLargeError,
  identityNameIssue,
  type ListPageOptions,
  type LookAlike,
  MAX_IDENTITY_NAME_LENGTH,
  MAX_SOURCE_LENGTH,
  reservedIdentityIssue,
  UnknownExampleError,
} from '@facerec/framework';
import { storedTextIssue } from '@facerec/framework/internal';
import { z } from 'zod';
import { statusOf } from '../detection.js';
import { type PipelineLogger, silentLogger } from '../logger.js';
import { requestIssues, requestJsonIssue } from '../messages.js';

/**
 * One page of the store's examples: from the store's own `listPage` (a query for the page alone), else a slice
 * of `list` for a store written before it.
 */
async function pageOf(store: GalleryStore, options: ListPageOptions): Promise<ExamplePage> {
  if (store.listPage) return store.listPage(options);
  const all = await store.list(options.identity === undefined ? {} : { identity: options.identity });
  return { examples: all.slice(options.offset, options.offset + options.limit), total: all.length };
}

/** The query parameters of `GET /collections/{name}/faces`. */
const LIST_PARAMETERS = ['identity', 'limit', 'offset'];
/** Faces in one listing page unless `?limit=` says otherwise, and the most it may say. */
export const LIST_PAGE = Object.freeze({ default: 1000, max: 10_000 });

/** `?limit=` and `?offset=` of a listing (digits only), or what is wrong with them. */
function listPage(params: URLSearchParams): { limit: number; offset: number } | string {
  const limit = params.get('limit');
  const offset = params.get('offset');
  if (params.getAll('limit').length > 1 || params.getAll('offset').length > 1)
    return 'one ?limit= and ?offset= at most';
  if (limit !== null && (!/^\d{1,6}$/.test(limit) || Number(limit) < 1 || Number(limit) > LIST_PAGE.max)) {
    return `?limit= takes a whole number from 1 to ${LIST_PAGE.max}`;
  }
  if (offset !== null && !/^\d{1,9}$/.test(offset)) return '?offset= takes a whole number ≥ 0';
  return {
    limit: limit === null ? LIST_PAGE.default : Number(limit),
    offset: offset === null ? 0 : Number(offset),
  };
}

/** Options of {@link createCollectionsApi}. */
export interface CollectionsApiOptions {
  /** The collections served, by name (URL path segment). */
  readonly collections: Readonly<Record<string, GalleryStore>>;
  /** Finds faces in uploaded photos; asked for crops with the embedder's crop policy. */
  readonly detector: Pick<FaceDetector, 'detectFaces'>;
  /** Embeds them; must be the collections' embedder (checked on every add). */
  readonly embedder: FaceEmbedder;
  /** Limits for the uploaded photo. Default: `decodeImage`'s. */
  readonly decodeLimits?: DecodeLimits;
  /**
   * The threshold recognition applies to a collection (read for every add: a store may be recalibrated). With
   * it, an added photo the collection already recognises as another identity is answered in `lookAlikes`
   * and logged as a warning (it is still added). Without it, or when it gives `undefined`, nothing is checked.
   */
  readonly threshold?: (store: GalleryStore) => number | undefined;
  readonly logger?: PipelineLogger;
}

/** A request to the collections API, its body already read (the local runtime reads bodies with its limits). */
export interface CollectionsRequest {
  readonly method: string;
  readonly url: URL;
  /** The body (for `POST`), already read and known to be JSON by content type. */
  readonly body?: Buffer;
}

/** The collections API: answers a request whose path starts with `/collections/`. */
export interface CollectionsApi {
  /** Whether `url` is a collections path. */
  handles(url: URL): boolean;
  handle(
    request: CollectionsRequest,
  ): Promise<{ status: number; body: unknown; headers?: Readonly<Record<string, string>> }>;
}

const addFaceSchema = z.strictObject({
  /** Who the photo shows: stored in Unicode NFC, as `facerec gallery add` stores it; the stores' name rules. */
  identity: z
    .string()
    .min(1)
    .max(MAX_IDENTITY_NAME_LENGTH)
    .transform((name) => name.normalize('NFC'))
    .superRefine((name, context) => {
      const issue = identityNameIssue(name);
      if (issue) context.addIssue({ code: 'custom', message: `the identity name ${issue}` });
      const reserved = reservedIdentityIssue(name);
      if (reserved) context.addIssue({ code: 'custom', message: `${reserved} and cannot name an identity` });
    }),
  /** The photo: a JPEG, PNG or WebP file, base64. */
  image: z.base64().min(1),
  /** Recorded as the example's source. Default: empty. Checked here as the stores check it, before any work. */
  source: z
    .string()
    .max(MAX_SOURCE_LENGTH)
    .superRefine((source, context) => {
      const issue = storedTextIssue(source, MAX_SOURCE_LENGTH);
      if (issue) context.addIssue({ code: 'custom', message: `the source ${issue}` });
    })
    .optional(),
  /** A photo with several faces: take the largest (default false: refused, it is unclear who is meant). */
  largest: z.boolean().optional(),
});

/** A path segment decoded, or `undefined` when its percent-encoding is malformed. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

const FACES = /^\/collections\/([^/]+)\/faces(?:\/([^/]+))?\/?$/;

/** Codes of a store that cannot take a change as it is (answered 503; the request itself is sound). */
const STORE_CANNOT_TAKE_CHANGES: ReadonlySet<string> = new Set([
  'GALLERY_UNCONDITIONAL_WRITES',
  'GALLERY_NOT_FOUND',
  'GALLERY_STORE_REFUSED',
]);

/**
 * Whether `error` is the stored gallery's own problem, not the request's: a file damaged or too large to read, one
 * of another embedder put in its place, or a code of {@link STORE_CANNOT_TAKE_CHANGES}.
 */
function storeCannotTakeChanges(error: unknown): error is FacerecError {
  return (
    GalleryFormatError.isInstance(error) ||
    EmbedderMismatchError.isInstance(error) ||
    (FacerecError.isInstance(error) && STORE_CANNOT_TAKE_CHANGES.has(error.code))
  );
}

/**
 * The local runtime's collections API, the run-time face of a gallery store (Rekognition's `IndexFaces`,
 * `ListFaces`, `DeleteFaces`):
 *
 * - `POST /collections/{name}/faces` `{ "identity", "image": <base64 photo>, "source"? }`: detects the one face
 *   (cut as the embedder takes it), embeds and adds it. 201 `{ collection, identity, faces: [{ id, source }],
 *   alreadyThere: 0 }`; 200 with `alreadyThere: 1` and the example as stored when that face was added before;
 *   400 bad JSON or fields, 422 no face, several faces or an undecodable photo, 413 a photo beyond the pixel
 *   limit, 415 a format not read, 507 an add that would take a file gallery past its size limit. Errors do not
 *   repeat the caller's names or unknown fields back.
 * - `GET /collections/{name}/faces[?identity=][&limit=][&offset=]`: 200 `{ collection, faces: [{ id, identity,
 *   source }], total, next_offset }`, one page (the store's `listPage`, else a slice of `list`).
 * - `DELETE /collections/{name}/faces/{id}`: 200 `{ collection, removed: 1 }`; 404 no such example.
 *
 * 404 for an unknown collection, 405 for another method; 503 when the store cannot be reached (with
 * `Retry-After`) or cannot take changes (damaged, gone, of another embedder). Recognition answers with the new person as soon as
 * the add returns (the store the pipeline matches against is this one). Logs name the collection and the
 * example ids, never the identity, the photo or the embedding.
 */
export function createCollectionsApi(options: CollectionsApiOptions): CollectionsApi {
  const logger = options.logger ?? silentLogger;
  const { collections, detector, embedder } = options;

  async function add(name: string, store: GalleryStore, body: Buffer | undefined) {
    let json: unknown;
    try {
      // Bytes that are not UTF-8 are refused, not turned into U+FFFD and stored in a name.
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(body ?? Buffer.alloc(0));
      } catch {
        return { status: 400, body: { error: 'body is not valid UTF-8' } };
      }
      const shape = requestJsonIssue(text);
      if (shape) return { status: 400, body: { error: shape } };
      json = JSON.parse(text);
    } catch {
      return { status: 400, body: { error: 'body is not valid JSON' } };
    }
    const parsed = addFaceSchema.safeParse(json);
    if (!parsed.success) return { status: 400, body: { error: requestIssues(parsed.error, addFaceSchema) } };
    const { identity, image, source = '', largest = false } = parsed.data;
    try {
      // The same face sent again is stored once (same id): it is answered 200 with the example as stored.
      const before = new Map((await store.list({ identity })).map((e) => [e.id, e]));
      const threshold = options.threshold?.(store);
      let lookAlikes: readonly LookAlike[] = [];
      const added = await addFacesFromPhotos(store, {
        identity,
        photos: [{ photo: Buffer.from(image, 'base64'), source }],
        detector,
        embedder,
        multipleFaces: largest ? 'largest' : 'reject',
        ...(options.decodeLimits ? { decodeLimits: options.decodeLimits } : {}),
        ...(threshold ? { lookAlikes: { threshold, onFound: (found) => (lookAlikes = found) } } : {}),
      });
      // Whether this call stored it (a concurrent add of the same face may have been first); a store without
      // `added` is judged by what it held before.
      const alreadyThere = added.filter((e) => !(e.added ?? !before.has(e.id))).length;
      // Names are personal data: the logs carry example ids (`GET …/faces` names them to whoever may ask).
      logger.info(alreadyThere === added.length ? 'face already there' : 'face added', {
        collection: name,
        ids: added.map((e) => e.id),
        alreadyThere,
      });
      if (lookAlikes.length) {
        logger.warn('face added is recognised as another identity', {
          collection: name,
          ids: added.map((e) => e.id),
          distance: lookAlikes[0]!.distance,
          threshold,
        });
      }
      const faces = added.map((e) => before.get(e.id) ?? e).map(({ id, source }) => ({ id, source }));
      return {
        status: alreadyThere === added.length ? 200 : 201,
        body: {
          collection: name,
          identity,
          faces,
          alreadyThere,
          // The photo's face is already recognised as these identities (a mislabelled photo, or one person
          // under two names): added all the same.
          lookAlikes: lookAlikes.map(({ identity, distance }) => ({ identity, distance })),
        },
      };
    } catch (error) {
      // The stored gallery's own problem (an input error of the store's file, or the file gone, not of this
      // request): see handle().
      if (storeCannotTakeChanges(error)) throw error;
      if (FacerecInputError.isInstance(error)) {
        // As the frame endpoint: 413 for an image beyond the pixel limit, 415 for a format it does not read.
        const status = statusOf(error);
        // The photo is named by its source in the message: not repeated back (it is the caller's own text).
        const message = source ? error.message.split(source).join('the photo') : error.message;
        const limit = ImageTooLargeError.isInstance(error)
          ? { limit: error.limit, maximum: error.maximum }
          : {};
        return {
          status: status === 413 || status === 415 ? status : 422,
          body: { error: message, ...limit },
        };
      }
      throw error;
    }
  }

  return {
    handles: (url) => url.pathname.startsWith('/collections/'),
    async handle(request) {
      try {
        return await route(request);
      } catch (error) {
        // The store's server is down or cut off (a database restarting, S3 unreachable): the request may be
        // sent again, as a frame refused with 503 is.
        if (FacerecError.isInstance(error) && error.code === 'GALLERY_UNREACHABLE') {
          logger.error('collection store unreachable', { reason: error.code, error: error.message });
          return {
            status: 503,
            body: { error: "the collection's store cannot be reached; retry later" },
            headers: { 'retry-after': '5' },
          };
        }
        // The stored gallery itself cannot be read or written (damaged, beyond the file size limit, removed from
        // under the server, replaced by one of another embedder, on an S3 server that ignores conditional writes, a
        // database role without the right):
        // the server's problem, not the request's, for an add as for a removal. Its details (a path, a parser's
        // message) go to the log, not to the caller.
        // An add to a gallery at its size limit: 507, not 503, which a client would retry.
        // (A file already too large to read is the store's problem: 503, below.)
        if (GalleryFormatError.isInstance(error) && error.problem === 'too-large-to-write') {
          logger.error('collection store full', { reason: error.code, error: error.message });
          return {
            status: 507,
            body: {
              error:
                "the collection's store is full: the add would take its gallery file beyond the size a file holds; remove faces, or move it to Postgres (facerec gallery copy)",
            },
          };
        }
        if (storeCannotTakeChanges(error)) {
          logger.error('collection store cannot take changes', { reason: error.code, error: error.message });
          return {
            status: 503,
            body: {
              error:
                "the collection's store cannot take changes: it cannot be read or written as it is (see the server's log)",
            },
          };
        }
        throw error;
      }
    },
  };

  async function route({ method, url, body }: CollectionsRequest) {
    const route = FACES.exec(url.pathname);
    if (!route) return { status: 404, body: { error: 'not found: use /collections/{name}/faces' } };
    // In NFC, as the names are (served names are checked to be): an NFD spelling finds the same collection.
    const name = decodeSegment(route[1]!)?.normalize('NFC');
    const id = route[2] === undefined ? undefined : decodeSegment(route[2]);
    if (name === undefined || (route[2] !== undefined && id === undefined)) {
      return { status: 400, body: { error: 'malformed percent-encoding in the path' } };
    }
    const store = Object.hasOwn(collections, name) ? collections[name] : undefined;
    // Errors never repeat the path's names back (they come from the caller): they say what exists instead.
    if (!store) {
      return {
        status: 404,
        body: { error: `no such collection; this server has ${Object.keys(collections).join(', ')}` },
      };
    }
    if (id === undefined && method === 'POST') return add(name, store, body);
    if (id === undefined && method === 'GET') {
      const unknown = [...new Set(url.searchParams.keys())].filter((k) => !LIST_PARAMETERS.includes(k));
      const values = url.searchParams.getAll('identity');
      const page = listPage(url.searchParams);
      // Said rather than guessed: a misspelt parameter would list every face, a second identity be ignored.
      if (unknown.length || values.length > 1 || values[0] === '' || typeof page === 'string') {
        return {
          status: 400,
          body: {
            error: unknown.length
              ? `unknown query parameter${unknown.length > 1 ? 's' : ''}; this route takes ${LIST_PARAMETERS.map((p) => `?${p}=`).join(', ')} only`
              : values.length > 1
                ? 'one ?identity= at a time'
                : values[0] === ''
                  ? '?identity= needs a name'
                  : (page as string),
          },
        };
      }
      const given = values[0];
      // As the store spells it: as given when it has that name, else in NFC (how names are stored).
      let found = await pageOf(store, { ...page, ...(given === undefined ? {} : { identity: given }) });
      if (given !== undefined && found.total === 0 && given.normalize('NFC') !== given) {
        found = await pageOf(store, { ...page, identity: given.normalize('NFC') });
      }
      const { examples: faces, total } = found;
      const next = page.offset + faces.length;
      return {
        status: 200,
        body: { collection: name, faces, total, next_offset: next < total ? next : null },
      };
    }
    if (id !== undefined && method === 'DELETE') {
      try {
        await store.removeExamples([id]);
      } catch (error) {
        if (UnknownExampleError.isInstance(error)) {
          return { status: 404, body: { error: `no face with that id in collection ${name}` } };
        }
        throw error;
      }
      logger.info('face removed', { collection: name, id });
      return { status: 200, body: { collection: name, removed: 1 } };
    }
    return {
      status: 405,
      body: {
        error: `${method} is not allowed there: POST or GET /collections/{name}/faces, DELETE /collections/{name}/faces/{id}`,
      },
    };
  }
}
