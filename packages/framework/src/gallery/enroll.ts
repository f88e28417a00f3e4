/**
 * Enrollment: a folder of `<root>/<identity>/<image>` files → a {@link FileGallery}.
 *
 * Every file found is accounted for: enrolled, or listed in `skipped` with a reason. Problems with one file
 * (undecodable bytes, no face, several faces) never stop the run; problems with the setup (a detector whose
 * crops do not fit the embedder, a failing model) do.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { FaceDetection, FaceDetector } from '../contracts/detector.js';
import type { FaceEmbedder } from '../contracts/embedder.js';
import type { DistanceMetric, IdentityAggregation } from '../contracts/gallery.js';
import {
  ImageTooLargeError,
  InvalidImageError,
  InvalidOptionsError,
  UnsupportedImageFormatError,
} from '../errors.js';
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeImage,
  decodeLimitsSchema,
  readImageFile,
} from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { parseOptions } from '../options.js';
import { precroppedDetectFaces } from '../recognizer/precropped.js';
import {
  identityNameIssue,
  type LookAlike,
  reservedIdentityIssue,
  storableSource,
  visibleText,
} from './collection.js';
import { thresholdSchema } from './format.js';
import { FileGallery, type GallerySearchOptions } from './gallery.js';
import {
  type FaceQuality,
  type FaceQualityOptions,
  faceQualityOptionsSchema,
  faceSize,
  measureFaceQuality,
  qualityProblem,
  resolveQualityThresholds,
} from './quality.js';
import type { GalleryIdentityInput } from './types.js';

/** File extensions enrolled (case-insensitive). */
export const ENROLL_EXTENSIONS: readonly string[] = Object.freeze(['.jpg', '.jpeg', '.png', '.webp']);

/**
 * What enrollment needs of a detector: `FaceDetector.detectFaces`, which enrollment calls with the
 * embedder's crop policy, so the crops are exactly what the embedder takes.
 */
export type EnrollmentDetector = Pick<FaceDetector, 'detectFaces'>;

/** What to do with an image showing more than one face. */
export type MultipleFacesPolicy = 'skip' | 'largest';

/** Why a file was not enrolled. */
export type SkipReason =
  | 'no face'
  | 'several faces'
  | 'face too small'
  | 'strong yaw'
  | 'blurry'
  | 'undecodable'
  | 'unsupported format'
  | 'too large'
  | 'unreadable'
  | 'unsupported extension'
  | 'not in an identity folder'
  | 'nested folder'
  | 'empty folder'
  | 'hidden'
  | 'reserved identity name'
  /** A folder name no store takes as an identity (control characters, too long): see `MAX_IDENTITY_NAME_LENGTH`. */
  | 'invalid identity name'
  /**
   * The very face of a photo enrolled before it (an identical embedding: a copy of that photo, or a link to
   * it), named in `detail`, under the same identity or another one (then a labelling mistake to look at).
   */
  | 'duplicate';

/** A file (or folder, with a trailing `/`) that was not enrolled. Paths are relative to the root, `/`-separated. */
export interface SkippedFile {
  readonly file: string;
  readonly reason: SkipReason;
  /** More about the reason: the decoder's message, the number of faces, ... */
  readonly detail?: string;
  /** For `too large`: the limit the file is over, and its size (bytes) or the image's pixels. */
  readonly tooLarge?: { readonly limit: 'bytes' | 'pixels'; readonly actual: number };
  /** For `duplicate`: the file kept, with its identity (another one than this file's: two names for one face). */
  readonly duplicateOf?: { readonly file: string; readonly identity: string };
}

/** A file that was enrolled. */
export interface EnrolledFile {
  readonly identity: string;
  readonly file: string;
  /** Faces the detector found (more than 1 only with `multipleFaces: 'largest'`). */
  readonly faces: number;
  /** What the quality checks measured on the enrolled face. */
  readonly quality: FaceQuality;
}

/** Reported after each image file is processed: for a progress bar. */
export interface EnrollProgress {
  /** Image files processed so far, this one included. */
  readonly done: number;
  /** Image files to process (files with an image extension inside identity folders). */
  readonly total: number;
  readonly file: string;
  readonly identity: string;
  readonly outcome: 'enrolled' | 'skipped';
  /** For `skipped`. */
  readonly reason?: SkipReason;
}

/** Options of {@link enrollGallery}. */
export interface EnrollOptions extends GallerySearchOptions {
  /** Folder holding one sub-folder per identity. */
  readonly root: string;
  /** Finds faces; enrollment asks it for crops with `embedder.preprocessing.crop`. */
  readonly detector: EnrollmentDetector;
  readonly embedder: Pick<
    FaceEmbedder,
    'modelId' | 'weightsSha256' | 'dimension' | 'preprocessing' | 'embed'
  >;
  /** Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** Default `nearest`. */
  readonly aggregation?: IdentityAggregation;
  /** Stored threshold; default 0 (uncalibrated, everything `'unknown'` until calibrated). */
  readonly threshold?: number;
  /** `skip` (default): images with several faces are skipped, as it is unclear who is meant; `largest`: enroll the largest. */
  readonly multipleFaces?: MultipleFacesPolicy;
  /**
   * Quality checks of the enrolled face, each reported as a skip reason (`face too small`, `strong yaw`,
   * `blurry`) with the measured value; `false` turns them all off. Defaults: {@link FaceQualityOptions}.
   */
  readonly quality?: FaceQualityOptions | false;
  /**
   * Pad and detect again a small image in which the detector finds no face or only tiny ones, i.e. a face
   * crop that fills the frame (`withPrecroppedFallback`). Default true.
   */
  readonly precroppedFallback?: boolean;
  /** Limits for decoding each image; default {@link DEFAULT_DECODE_LIMITS}. */
  readonly decodeLimits?: DecodeLimits;
  /** Images decoded, detected and embedded together. Default 8. */
  readonly batchSize?: number;
  readonly onProgress?: (event: EnrollProgress) => void;
  /** Stops between batches, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** What {@link enrollGallery} produced. */
export interface EnrollResult {
  readonly gallery: FileGallery;
  /** In processing order (identity, then file name). */
  readonly enrolled: readonly EnrolledFile[];
  /** Every file or folder not enrolled, with the reason; nothing is dropped silently. */
  readonly skipped: readonly SkippedFile[];
  /**
   * Identity folders of which no photo was enrolled (each one skipped, or none there), in name order: these people
   * are not in the gallery.
   */
  readonly unenrolled: readonly string[];
}

const isFunction = (v: unknown) => typeof v === 'function';
const optionsSchema = z.strictObject({
  root: z.string().min(1),
  detector: z.custom<EnrollmentDetector>(
    (v) => typeof v === 'object' && v !== null && isFunction((v as EnrollmentDetector).detectFaces),
    'must have a detectFaces(images) method',
  ),
  embedder: z.custom<EnrollOptions['embedder']>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      isFunction((v as FaceEmbedder).embed) &&
      typeof (v as FaceEmbedder).preprocessing === 'object',
    'must be a FaceEmbedder',
  ),
  metric: z.enum(['euclidean', 'cosine']).optional(),
  aggregation: z.enum(['nearest', 'centroid']).optional(),
  threshold: thresholdSchema.optional(),
  multipleFaces: z.enum(['skip', 'largest']).default('skip'),
  quality: z.union([z.literal(false), faceQualityOptionsSchema]).optional(),
  precroppedFallback: z.boolean().default(true),
  decodeLimits: decodeLimitsSchema,
  batchSize: z.number().int().min(1).max(256).default(8),
  onProgress: z.custom<(e: EnrollProgress) => void>(isFunction, 'must be a function').optional(),
  signal: z.instanceof(AbortSignal).optional(),
  kernel: z.enum(['auto', 'wasm', 'js']).optional(),
});

interface Candidate {
  readonly identity: string;
  readonly file: string;
  readonly absolute: string;
}

/**
 * Enrolls every image under `root`: `<root>/<identity>/*.{jpg,jpeg,png,webp}`. For each image: read, decode
 * (within `decodeLimits`), detect, keep the one face (or the largest, per `multipleFaces`), and embed the
 * kept crops of a batch in one call. Identities and files are processed in code-unit order of their names.
 *
 * Skipped, with a reason, never silently: files directly under `root`, files in folders nested inside an
 * identity folder, other extensions, hidden entries (`.name`, `Thumbs.db`, `desktop.ini`, `__MACOSX`, `@eaDir`), empty identity folders, a folder named
 * `unknown` (reserved), and images that cannot be read or decoded, are too large, or show no face or
 * several faces (counting only faces of at least `minFaceSize`), and faces that fail a quality check (`quality`): `face too small` (larger box side below
 * `minFaceSize`, default half the embedder's input width), `strong yaw` (estimated head turn above `maxYaw`,
 * default 40°), `blurry` (variance of the Laplacian of the crop below `minSharpness`, default 10).
 *
 * Faces are cut out with the embedder's crop policy (`embedder.preprocessing.crop`: its input size, crop
 * shape and margin), so nobody matches sizes by hand; a detector that returns crops of another size anyway
 * is refused.
 *
 * @throws {@link InvalidOptionsError} for bad options, a missing root, or crops that do not fit the embedder.
 * Errors of the detector or embedder themselves propagate (they are not about one file).
 *
 * @example
 * const provider = createOnnxProvider();
 * const embedder = await provider.embedder('inception-resnet-v1', { weights: 'vggface2' });
 * const detector = provider.detector('mtcnn');
 * const { gallery, skipped } = await enrollGallery({ root: 'people', detector, embedder });
 * await gallery.save('people.gallery.json');
 */
export async function enrollGallery(options: EnrollOptions): Promise<EnrollResult> {
  const o = parseOptions(optionsSchema, options, 'enrollGallery');
  const { embedder } = o;
  const detectFaces = o.precroppedFallback
    ? precroppedDetectFaces(o.detector.detectFaces.bind(o.detector))
    : o.detector.detectFaces.bind(o.detector);
  const { width, height } = embedder.preprocessing.inputSize;
  const crop = embedder.preprocessing.crop;
  const limits = { ...DEFAULT_DECODE_LIMITS, ...o.decodeLimits };
  const thresholds = resolveQualityThresholds(o.quality, { width });

  const { candidates, skipped, identities: folders } = await scan(o.root);
  const enrolled: EnrolledFile[] = [];
  const examples = new Map<string, { source: string; embedding: Float32Array }[]>();
  // Each enrolled embedding's bytes, and the photo it came from: a copy enrolled again would be a second
  // example with the same id (which a removal by id then took out twice).
  const faces = new Map<string, Candidate>();
  let done = 0;
  const report = (c: Candidate, outcome: EnrollProgress['outcome'], reason?: SkipReason) => {
    done++;
    o.onProgress?.({ done, total: candidates.length, file: c.file, identity: c.identity, outcome, reason });
  };

  for (let first = 0; first < candidates.length; first += o.batchSize) {
    o.signal?.throwIfAborted();
    const batch = candidates.slice(first, first + o.batchSize);
    const loaded = await Promise.all(batch.map((c) => load(c, limits)));
    const images = loaded.filter((l): l is RgbImage => !('reason' in l));
    const detections = images.length ? await detectFaces(images, { crop }) : [];
    if (detections.length !== images.length) {
      throw new Error(`detector returned ${detections.length} results for ${images.length} images`);
    }
    // Per file: the skip, or the crop to embed.
    const outcomes: ({ skip: SkippedFile } | { crop: RgbImage; faces: number; quality: FaceQuality })[] = [];
    let next = 0;
    batch.forEach((c, i) => {
      const l = loaded[i]!;
      if ('reason' in l) {
        outcomes.push({ skip: { file: c.file, ...l } });
        return;
      }
      const { faces, crops } = detections[next++]!;
      // Faces too small to enroll do not make a photo ambiguous (a face in the background, a false detection).
      const candidates = faces.filter((f) => faceSize(f) >= thresholds.minFaceSize).length;
      if (faces.length === 0) {
        outcomes.push({ skip: { file: c.file, reason: 'no face' } });
      } else if (candidates > 1 && o.multipleFaces === 'skip') {
        const smaller = faces.length - candidates;
        outcomes.push({
          skip: {
            file: c.file,
            reason: 'several faces',
            detail: `${candidates} faces detected${smaller ? ` (and ${smaller} below minFaceSize)` : ''}`,
          },
        });
      } else {
        const chosen = largest(faces);
        const crop = crops[chosen]?.image;
        if (!crop)
          throw new Error(`detector returned ${faces.length} faces but ${crops.length} crops for ${c.file}`);
        if (crop.width !== width || crop.height !== height) {
          throw cropSizeError(`${crop.width}×${crop.height}`, embedder);
        }
        const quality = measureFaceQuality(faces[chosen]!, crop);
        const problem = qualityProblem(quality, thresholds);
        if (problem) outcomes.push({ skip: { file: c.file, ...problem } });
        else outcomes.push({ crop, faces: faces.length, quality });
      }
    });
    const crops = outcomes.flatMap((x) => ('crop' in x ? [x.crop] : []));
    const vectors = crops.length ? await embedder.embed(crops) : [];
    if (vectors.length !== crops.length) {
      throw new Error(`embedder returned ${vectors.length} embeddings for ${crops.length} crops`);
    }
    let v = 0;
    batch.forEach((c, i) => {
      const x = outcomes[i]!;
      if ('skip' in x) {
        skipped.push(x.skip);
        report(c, 'skipped', x.skip.reason);
        return;
      }
      const embedding = vectors[v++]!;
      const key = Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString(
        'base64',
      );
      const first = faces.get(key);
      if (first) {
        const detail = `the same face as ${first.file}${first.identity === c.identity ? '' : `, enrolled as ${first.identity}`}`;
        skipped.push({
          file: c.file,
          reason: 'duplicate',
          detail,
          duplicateOf: { file: first.file, identity: first.identity },
        });
        report(c, 'skipped', 'duplicate');
        return;
      }
      faces.set(key, c);
      const list = examples.get(c.identity) ?? [];
      list.push({ source: storableSource(c.file), embedding });
      examples.set(c.identity, list);
      enrolled.push({ identity: c.identity, file: c.file, faces: x.faces, quality: x.quality });
      report(c, 'enrolled');
    });
  }

  const identities: GalleryIdentityInput[] = [...examples].map(([name, list]) => ({ name, examples: list }));
  const gallery = FileGallery.create(
    {
      embedder: {
        modelId: embedder.modelId,
        weightsSha256: embedder.weightsSha256,
        dimension: embedder.dimension,
        preprocessing: embedder.preprocessing,
      },
      metric: o.metric,
      aggregation: o.aggregation,
      threshold: o.threshold,
      identities,
    },
    { kernel: o.kernel },
  );
  const unenrolled = [...new Set(folders)].filter((name) => !examples.has(name));
  return { gallery, enrolled, skipped, unenrolled };
}

function cropSizeError(crop: string, embedder: EnrollOptions['embedder']): InvalidOptionsError {
  const { width, height } = embedder.preprocessing.inputSize;
  return new InvalidOptionsError(
    'enrollGallery',
    `the detector cuts ${crop} face crops but embedder "${embedder.modelId}" takes ${width}×${height} inputs; ` +
      "the detector must cut crops with the embedder's crop policy (detectFaces(images, { crop: embedder.preprocessing.crop }))",
  );
}

/** Index of the face with the largest box (detectors sort largest first; this does not rely on it). */
function largest(faces: readonly FaceDetection[]): number {
  let best = 0;
  let bestArea = -1;
  faces.forEach((f, i) => {
    const area = Math.max(0, f.box[2] - f.box[0]) * Math.max(0, f.box[3] - f.box[1]);
    if (area > bestArea) {
      bestArea = area;
      best = i;
    }
  });
  return best;
}

/** Reads and decodes one image, or says why not. Only per-file problems are caught. */
async function load(
  c: Candidate,
  limits: Required<DecodeLimits>,
): Promise<RgbImage | Omit<SkippedFile, 'file'>> {
  const tooLarge = (error: ImageTooLargeError) => ({
    reason: 'too large' as const,
    detail: error.message,
    tooLarge: { limit: error.limit, actual: error.actual },
  });
  let bytes: Uint8Array;
  try {
    // Refused before reading, so a huge file is never loaded into memory only to be refused.
    bytes = await readImageFile(c.absolute, limits);
  } catch (error) {
    if (ImageTooLargeError.isInstance(error)) return tooLarge(error);
    return { reason: 'unreadable', detail: errorMessage(error) };
  }
  try {
    return await decodeImage(bytes, limits);
  } catch (error) {
    if (ImageTooLargeError.isInstance(error)) return tooLarge(error);
    if (UnsupportedImageFormatError.isInstance(error))
      return { reason: 'unsupported format', detail: error.message };
    if (InvalidImageError.isInstance(error)) return { reason: 'undecodable', detail: error.message };
    throw error;
  }
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));
const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Hidden entries: dot-names, and what file managers, archivers and NAS systems leave in folders (Windows'
 * `Thumbs.db` and `desktop.ini`, macOS zips' `__MACOSX`, Synology's `@eaDir`), skipped as `hidden` (so
 * `facerec enroll --strict` ignores them); a folder holding nothing else is an `empty folder`.
 */
const isHidden = (name: string) =>
  name.startsWith('.') || ['thumbs.db', 'desktop.ini', '@eadir', '__macosx'].includes(name.toLowerCase());

/** How deep nested folders are followed to list their files as skipped. */
const MAX_NESTED_DEPTH = 16;

/**
 * The entries of a folder of labelled images (`<root>/<identity>/<photo>`).
 * @throws InvalidOptionsError from `component` naming the folder and why it cannot be read (the CLI checks it
 *   with this before it loads any model).
 */
export async function readLabelledFolder(root: string, component = 'enrollGallery'): Promise<Dirent[]> {
  try {
    return await readdir(root, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such folder'
        : code === 'ENOTDIR'
          ? 'a file, not a folder'
          : errorMessage(error);
    throw new InvalidOptionsError(
      component,
      `cannot read the folder of labelled images ${visibleText(root)}: ${why}`,
      {
        cause: error,
      },
    );
  }
}

/** Lists the enrollable files, the identity folders (readable, with a valid name) and, with reasons, everything else. */
async function scan(
  root: string,
): Promise<{ candidates: Candidate[]; skipped: SkippedFile[]; identities: string[] }> {
  const rel = (absolute: string) => path.relative(root, absolute).split(path.sep).join('/');
  const entries = await readLabelledFolder(root);
  const candidates: Candidate[] = [];
  const skipped: SkippedFile[] = [];
  const identities: string[] = [];
  for (const entry of entries.sort((a, b) => byCodeUnit(a.name, b.name))) {
    const absolute = path.join(root, entry.name);
    const kind = await kindOf(entry, absolute);
    const label = rel(absolute) + (kind === 'directory' ? '/' : '');
    // The identity is the folder name in NFC (macOS file names can come decomposed).
    const identity = entry.name.normalize('NFC');
    const nameIssue = identityNameIssue(identity);
    const reserved = reservedIdentityIssue(identity);
    if (isHidden(entry.name)) {
      skipped.push({ file: label, reason: 'hidden' });
    } else if (kind === 'file') {
      skipped.push({ file: label, reason: 'not in an identity folder' });
    } else if (kind !== 'directory') {
      skipped.push({ file: label, reason: 'unreadable', detail: kind });
    } else if (reserved || nameIssue) {
      const [reason, detail]: [SkipReason, string] = nameIssue
        ? ['invalid identity name', `the folder name ${nameIssue}`]
        : ['reserved identity name', reserved!];
      const files = await listFiles(absolute, 0);
      if (files.length === 0) skipped.push({ file: label, reason, detail });
      for (const file of files) skipped.push({ file: rel(file), reason, detail });
    } else {
      let found = 0;
      let inner: Dirent[];
      identities.push(identity);
      try {
        inner = await readdir(absolute, { withFileTypes: true });
      } catch (error) {
        skipped.push({ file: label, reason: 'unreadable', detail: errorMessage(error) });
        continue;
      }
      for (const item of inner.sort((a, b) => byCodeUnit(a.name, b.name))) {
        // A folder holding only hidden entries (a .DS_Store) is as empty as one holding nothing.
        if (!isHidden(item.name)) found++;
        const itemPath = path.join(absolute, item.name);
        const itemKind = await kindOf(item, itemPath);
        if (isHidden(item.name)) {
          skipped.push({ file: rel(itemPath) + (itemKind === 'directory' ? '/' : ''), reason: 'hidden' });
        } else if (itemKind === 'directory') {
          const nested = item.isSymbolicLink() ? [] : await listFiles(itemPath, 1);
          if (nested.length === 0) skipped.push({ file: `${rel(itemPath)}/`, reason: 'nested folder' });
          for (const file of nested) skipped.push({ file: rel(file), reason: 'nested folder' });
        } else if (itemKind !== 'file') {
          skipped.push({ file: rel(itemPath), reason: 'unreadable', detail: itemKind });
        } else if (!ENROLL_EXTENSIONS.includes(path.extname(item.name).toLowerCase())) {
          skipped.push({
            file: rel(itemPath),
            reason: 'unsupported extension',
            detail: `enrolled extensions: ${ENROLL_EXTENSIONS.join(', ')}`,
          });
        } else {
          candidates.push({ identity, file: rel(itemPath), absolute: itemPath });
        }
      }
      if (found === 0) skipped.push({ file: label, reason: 'empty folder' });
    }
  }
  return { candidates, skipped, identities };
}

/** `file`, `directory`, or a description of anything else (a broken link, a socket). Follows symbolic links. */
export async function kindOf(entry: Dirent, absolute: string): Promise<string> {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'directory';
  if (entry.isSymbolicLink()) {
    try {
      const s = await stat(absolute);
      if (s.isFile()) return 'file';
      if (s.isDirectory()) return 'directory';
    } catch (error) {
      return `broken link (${errorMessage(error)})`;
    }
  }
  return 'not a regular file';
}

/** Every file below `dir` (not following linked folders, to avoid cycles), sorted. */
async function listFiles(dir: string, depth: number): Promise<string[]> {
  if (depth > MAX_NESTED_DEPTH) return [];
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => byCodeUnit(a.name, b.name))) {
    const absolute = path.join(dir, entry.name);
    // A loop, not push(...): a folder of some 125,000 files or more would overflow the call stack.
    if (entry.isDirectory()) for (const file of await listFiles(absolute, depth + 1)) out.push(file);
    else out.push(absolute);
  }
  return out;
}

/** An enrolled photo whose face the rest of its gallery recognises as another person (see {@link findLookAlikes}). */
export interface EnrolledLookAlike extends LookAlike {
  /** The identity the photo was enrolled as (its folder). */
  readonly enrolledAs: string;
}

/** Examples matched at once by {@link findLookAlikes}: bounds the distances held (queries × gallery rows). */
const LOOK_ALIKE_CHUNK = 256;

/**
 * The enrolled photos whose face another identity of the same gallery matches at or below `threshold` (the one
 * recognition applies): a mislabelled photo, or one person under two names, whom recognition may answer as
 * either. `facerec enroll` warns of them, as `gallery add` warns of a photo the store already recognises as
 * someone else. Cost: one match per example (examples × rows × dimension), far below embedding them.
 *
 * @example
 * const { gallery } = await enrollGallery({ root: 'people', detector, embedder });
 * for (const l of await findLookAlikes(gallery, 0.448)) console.warn(`${l.source}: looks like ${l.identity}`);
 */
export async function findLookAlikes(gallery: FileGallery, threshold: number): Promise<EnrolledLookAlike[]> {
  if (gallery.names.length < 2) return [];
  const examples = gallery.names.flatMap((name) => gallery.examples(name).map((e) => ({ name, e })));
  const found: EnrolledLookAlike[] = [];
  for (let first = 0; first < examples.length; first += LOOK_ALIKE_CHUNK) {
    const chunk = examples.slice(first, first + LOOK_ALIKE_CHUNK);
    // The two nearest identities: the photo's own (it is one of its examples) and the nearest other one.
    const matches = await gallery.match(
      chunk.map(({ e }) => e.embedding),
      { topK: 2, threshold },
    );
    matches.forEach((m, i) => {
      const { name, e } = chunk[i]!;
      const other = m.candidates.find((c) => c.identity !== name);
      if (other && other.distance <= threshold) {
        found.push({
          source: e.source,
          enrolledAs: name,
          identity: other.identity,
          distance: other.distance,
        });
      }
    });
  }
  return found;
}
