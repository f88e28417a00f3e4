/**
 * Errors of the gallery module. They extend the package's base classes (`../errors.ts`) and so carry the
 * same `Symbol.for` marker and static `isInstance`; each declares its own `errorName`.
 */
import { FacerecError, FacerecInputError } from '../errors.js';

/** One problem found in a gallery file: where (a JSON path such as `identities.3.examples.0.embedding`) and what. */
export interface GalleryFormatIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * What is wrong with a gallery file, as a fixed word for logs (a {@link GalleryFormatError}'s message can quote
 * the file): not JSON, JSON that is no facerec gallery, a `formatVersion` this code does not read, content that
 * fails validation (its `issues` say where), or a file beyond the size limit.
 */
/**
 * What is wrong with a gallery file, for logs: `too-large` one too large to read, `too-large-to-write` a change that
 * would make it so (nothing written).
 */
export type GalleryFormatProblem =
  | 'not-json'
  | 'not-a-gallery'
  | 'format-version'
  | 'invalid'
  | 'too-large'
  | 'too-large-to-write';

/**
 * A gallery file that cannot be used: not JSON, not a facerec gallery, a `formatVersion` this code does not
 * read, or content that fails validation (bad base64, wrong embedding length, a non-unit vector, duplicate
 * identities), or one too large to read or write (code `GALLERY_TOO_LARGE`). `issues` lists every problem
 * found, each with its JSON path.
 */
export class GalleryFormatError extends FacerecInputError {
  static override readonly errorName: string = 'GalleryFormatError';
  /** The file (or other source) that was being read, when known. */
  readonly source: string | undefined;
  readonly issues: readonly GalleryFormatIssue[];
  /** What is wrong, without quoting the file (for logs). */
  readonly problem: GalleryFormatProblem;
  constructor(
    message: string,
    options?: {
      source?: string;
      issues?: readonly GalleryFormatIssue[];
      cause?: unknown;
      /** `GALLERY_TOO_LARGE` for a file beyond the size limit (default `INVALID_GALLERY`). */
      code?: 'INVALID_GALLERY' | 'GALLERY_TOO_LARGE';
      /** Default: `too-large` with code `GALLERY_TOO_LARGE`, else `invalid`. */
      problem?: GalleryFormatProblem;
    },
  ) {
    const where = options?.source ? `${options.source}: ` : '';
    const issues = options?.issues ?? [];
    const detail = issues.length
      ? ` (${issues
          .slice(0, 5)
          .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
          .join('; ')}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''})`
      : '';
    super(options?.code ?? 'INVALID_GALLERY', `${where}${message}${detail}`, options);
    this.source = options?.source;
    this.issues = issues;
    this.problem = options?.problem ?? (options?.code === 'GALLERY_TOO_LARGE' ? 'too-large' : 'invalid');
  }
}

/**
 * Matching asked of a gallery with embeddings from a different embedder (another model id, other weights,
 * another dimension or preprocessing). Distances between embeddings of two different models mean nothing,
 * so this is refused rather than answered. A configuration error, not bad request input, so it extends
 * {@link FacerecError} (HTTP 5xx), not {@link FacerecInputError}.
 */
export class EmbedderMismatchError extends FacerecError {
  static override readonly errorName: string = 'EmbedderMismatchError';
  /** Model id the gallery was enrolled with. */
  readonly galleryModel: string;
  /** Model id of the embedder offered for matching. */
  readonly embedderModel: string;
  readonly galleryWeightsSha256: string | undefined;
  readonly embedderWeightsSha256: string | undefined;
  /** Which property differs: `modelId`, `weightsSha256`, `dimension` or `preprocessing`. */
  readonly mismatch: 'modelId' | 'weightsSha256' | 'dimension' | 'preprocessing';
  constructor(options: {
    galleryModel: string;
    embedderModel: string;
    galleryWeightsSha256: string | undefined;
    embedderWeightsSha256: string | undefined;
    mismatch: EmbedderMismatchError['mismatch'];
    detail: string;
  }) {
    const describe = (model: string, sha: string | undefined) =>
      `"${model}"${sha ? ` (weights sha256 ${sha.slice(0, 12)}…)` : ''}`;
    super(
      'EMBEDDER_MISMATCH',
      `The gallery was enrolled with embedder ${describe(options.galleryModel, options.galleryWeightsSha256)} ` +
        `but the embedder offered is ${describe(options.embedderModel, options.embedderWeightsSha256)}: ` +
        `${options.detail}. ` +
        (options.galleryModel === options.embedderModel && options.mismatch === 'weightsSha256'
          ? `Embeddings made with other weights cannot be compared; re-enroll the gallery with these weights, ` +
            `or match with the weights it was enrolled with.`
          : options.galleryModel === options.embedderModel
            ? `Embeddings made with another input or crop cannot be compared; re-enroll the gallery with this ` +
              `version of "${options.embedderModel}".`
            : `Embeddings of different models cannot be compared; re-enroll the gallery with ` +
              `"${options.embedderModel}" or match with "${options.galleryModel}".`),
    );
    this.galleryModel = options.galleryModel;
    this.embedderModel = options.embedderModel;
    this.galleryWeightsSha256 = options.galleryWeightsSha256;
    this.embedderWeightsSha256 = options.embedderWeightsSha256;
    this.mismatch = options.mismatch;
  }
}

/** Identities named that the gallery does not hold (e.g. `withoutIdentities(['bob'])` with no `bob`). */
export class UnknownIdentityError extends FacerecInputError {
  static override readonly errorName: string = 'UnknownIdentityError';
  readonly identities: readonly string[];
  constructor(identities: readonly string[], available: number) {
    super(
      'UNKNOWN_IDENTITY',
      `The gallery has no identit${identities.length === 1 ? 'y' : 'ies'} ${identities
        .map((i) => JSON.stringify(i))
        .join(', ')} (it holds ${available} identit${available === 1 ? 'y' : 'ies'})`,
    );
    this.identities = identities;
  }
}

/** Example ids that a gallery store does not hold (e.g. `removeExamples(['3f…'])` after it was removed). */
export class UnknownExampleError extends FacerecInputError {
  static override readonly errorName: string = 'UnknownExampleError';
  readonly ids: readonly string[];
  constructor(ids: readonly string[]) {
    super(
      'UNKNOWN_EXAMPLE',
      `The gallery has no example${ids.length === 1 ? '' : 's'} ${ids
        .slice(0, 5)
        .map((i) => JSON.stringify(i))
        .join(', ')}${ids.length > 5 ? ` and ${ids.length - 5} more` : ''}`,
    );
    this.ids = ids;
  }
}

/** A gallery store that does not exist (no file, no object, no collection) and was not to be created. */
export class GalleryStoreNotFoundError extends FacerecInputError {
  static override readonly errorName: string = 'GalleryStoreNotFoundError';
  /** The store, as a path or a URL without credentials. */
  readonly location: string;
  constructor(location: string, hint = '') {
    super('GALLERY_NOT_FOUND', `no gallery at ${location}${hint}`);
    this.location = location;
  }
}

/** Node's codes for a server that cannot be reached at all, or a connection cut on the way. */
const NETWORK_UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
]);

/**
 * `error`'s network code when it says the server could not be reached (no server, unknown host, a cut or
 * timed-out connection; also on its `cause`, where SDKs wrap it), else `undefined`. `more`: a store's own codes.
 */
export function unreachableCode(error: unknown, more: ReadonlySet<string> = new Set()): string | undefined {
  for (let e = error, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_UNREACHABLE.has(code) || more.has(code))) return code;
  }
  return undefined;
}

/**
 * A store whose server cannot be reached (code `GALLERY_UNREACHABLE`, a {@link FacerecError}: the server's
 * problem, to be tried again later, e.g. HTTP 503), naming the store without credentials and why.
 */
export function galleryUnreachable(
  server: string,
  location: string,
  why: string,
  cause: unknown,
): FacerecError {
  return new FacerecError('GALLERY_UNREACHABLE', `cannot reach ${server} of ${location} (${why})`, { cause });
}

/**
 * Why a stored version was refused, for a log line: the error's code (or class), for a damaged file what is
 * wrong and where (JSON paths, at most five), for a mismatch the two models; never an error's message, which
 * can quote the file (identity names, sources).
 */
export function refusalDetails(error: unknown): Record<string, unknown> {
  if (EmbedderMismatchError.isInstance(error)) {
    return {
      reason: error.code,
      mismatch: error.mismatch,
      gallery_model: error.galleryModel,
      expected_model: error.embedderModel,
    };
  }
  if (GalleryFormatError.isInstance(error)) {
    const issues = error.issues.slice(0, 5).map((i) => i.path || '(file)');
    return { reason: error.code, problem: error.problem, ...(issues.length ? { issues } : {}) };
  }
  if (FacerecError.isInstance(error)) return { reason: error.code };
  return { reason: error instanceof Error ? error.name : typeof error };
}
