/**
 * What every mutable gallery store shares: example ids, the validation of what is added, and adding faces
 * from photos (detect → crop with the embedder's crop policy → embed → add).
 */
import { createHash } from 'node:crypto';
import type { FaceDetector } from '../contracts/detector.js';
import type { FaceEmbedder } from '../contracts/embedder.js';
import type {
  AddedExample,
  GalleryStore,
  ListPageOptions,
  NewExample,
  StoredExample,
} from '../contracts/gallery-store.js';
import { FacerecInputError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import { type DecodeLimits, decodeImage, decodeLimitsSchema } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { boxArea } from '../mtcnn/cascade.js';
import { parseOptions } from '../options.js';
import { precroppedDetectFaces } from '../recognizer/precropped.js';
import { NO_FACE_RESULT, UNKNOWN_IDENTITY } from './format.js';
import {
  type FaceQualityOptions,
  faceQualityOptionsSchema,
  faceSize,
  measureFaceQuality,
  qualityProblem,
  resolveQualityThresholds,
} from './quality.js';
import { encodeFloat32, legacyNormalised, normaliseInto } from './vectors.js';

/** Hex characters of an example id (96 bits of sha256: collisions are not a concern at any gallery size). */
const ID_HEX = 24;

/**
 * The id of an example: the first 96 bits of sha256 over the identity's UTF-8 bytes, a zero byte, and the
 * normalised embedding as little-endian float32 (in base64). Derived from the content, so every store gives the same
 * example the same id (no id column in the gallery file, ids survive a copy from one store to another), and
 * adding an example twice is a no-op.
 */
export function exampleId(identity: string, embedding: Float32Array): string {
  // Hashing the base64 of the bytes hashes the bytes: the encoding is one-to-one.
  return createHash('sha256')
    .update(identity, 'utf8')
    .update(Buffer.of(0))
    .update(encodeFloat32(embedding))
    .digest('hex')
    .slice(0, ID_HEX);
}

/** An example checked and normalised, ready to store. */
export interface PreparedExample extends StoredExample {
  /** L2-normalised, float32. */
  readonly embedding: Float32Array;
  /**
   * The id an earlier version gave the same example (it normalised the embedding again: other bytes), when it
   * differs from `id`: a store holding it holds this example already.
   */
  readonly legacyId?: string;
}

/**
 * The longest identity name a store takes, in UTF-16 code units. Postgres indexes names, and one b-tree entry
 * holds at most about 2.7 KB (256 code units are at most 768 bytes of UTF-8).
 */
export const MAX_IDENTITY_NAME_LENGTH = 256;
/** The longest example source (a file name, an upload id) a store takes. */
export const MAX_SOURCE_LENGTH = 1024;

/**
 * Why `text` cannot be stored as a name or a source, or undefined: longer than `max`, a control character
 * (Postgres refuses NUL; a newline would split a log line or a listing), or a lone surrogate (not Unicode:
 * Postgres would store U+FFFD instead, and the name read back would differ from the one added).
 */
export function storedTextIssue(text: string, max: number): string | undefined {
  if (text.length > max) return `is ${text.length} characters long; at most ${max}`;
  if (/\p{Cc}/u.test(text)) return 'holds a control character';
  if (/\p{Cs}/u.test(text)) return 'is not well-formed Unicode (a lone surrogate)';
  return undefined;
}

/**
 * Why a store must refuse `source` (an example's source, as `add` is given it), or `undefined`: longer than
 * {@link MAX_SOURCE_LENGTH}, a control character or a lone surrogate ({@link storedTextIssue}). For stores
 * written outside this package, with {@link identityNameIssue} and {@link reservedIdentityIssue} for names.
 */
export function sourceIssue(source: string): string | undefined {
  return storedTextIssue(source, MAX_SOURCE_LENGTH);
}

/**
 * `source` as a store takes it: as it is, or, when it holds what no store takes (a control character: a file
 * named with a newline), with those characters escaped ({@link visibleText}), and at most
 * {@link MAX_SOURCE_LENGTH} characters (a longer one keeps its end, the file's name). A source only says where
 * a photo came from: enrollment and `facerec gallery add` record such a file rather than refuse it, and a gallery
 * they wrote can be copied into every store.
 */
export function storableSource(source: string): string {
  const text = storedTextIssue(source, Number.POSITIVE_INFINITY) ? visibleText(source) : source;
  return text.length > MAX_SOURCE_LENGTH ? `…${text.slice(-(MAX_SOURCE_LENGTH - 1))}` : text;
}

/**
 * Emoji tag sequences (a subdivision flag: 🏴, tag letters, a cancel tag): their tag characters are invisible
 * format characters, but part of the flag's spelling.
 */
const FLAG_TAG_SEQUENCE = '\\u{1F3F4}[\\u{E0020}-\\u{E007E}]+\\u{E007F}';
/**
 * Characters that print as nothing or move what follows: format characters (zero-width space, byte-order
 * mark, direction controls; not the zero-width (non-)joiners, which spell names in Persian, Indic scripts and
 * emoji), line and paragraph separators, the Hangul filler letters, the combining grapheme joiner, Khmer's
 * invisible vowels, the blank braille pattern, the object replacement character, and variation selectors but
 * after an emoji (where they choose its presentation: "❤️").
 */
const INVISIBLE =
  '(?![\\u200c\\u200d])[\\p{Cf}\\p{Zl}\\p{Zp}\\u115f\\u1160\\u3164\\uffa0\\u034f\\u17b4\\u17b5\\u2800\\ufffc]' +
  '|(?<!\\p{Emoji})[\\ufe00-\\ufe0f\\u{e0100}-\\u{e01ef}]';
const INVISIBLE_OUTSIDE_FLAGS = new RegExp(`(${FLAG_TAG_SEQUENCE})|${INVISIBLE}`, 'gu');

/** Whether `text` holds an invisible character (see {@link visibleText}) outside a flag's tag sequence. */
function holdsInvisible(text: string): boolean {
  return [...text.matchAll(INVISIBLE_OUTSIDE_FLAGS)].some((m) => m[1] === undefined);
}

/**
 * `text` with every control character, invisible character (format characters but the zero-width joiners,
 * line and paragraph separators, Hangul fillers) and backslash written as an escape (`\n`, `\t`, `\u202e`,
 * `\u{e0067}`, `\\`), so that a name or a path prints as one line of what it holds, and two that differ print
 * differently. Emoji flags' tag sequences are kept.
 */
export function visibleText(text: string): string {
  const named: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' };
  return text.replace(
    new RegExp(`(${FLAG_TAG_SEQUENCE})|${INVISIBLE}|[\\p{Cc}\\\\]`, 'gu'),
    (c, flag: string | undefined) => {
      if (flag !== undefined) return c;
      const code = c.codePointAt(0)!;
      return (
        named[c] ?? (code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`)
      );
    },
  );
}

/**
 * What is wrong with a new identity name, or `undefined`: {@link storedTextIssue}, spaces at either end (or
 * only spaces), an invisible format character other than the zero-width (non-)joiners, or a spelling other than Unicode NFC (the same name typed on another system, e.g. macOS's
 * decomposed file names, would otherwise make a second identity that prints the same).
 */
export function identityNameIssue(name: string): string | undefined {
  const issue = storedTextIssue(name, MAX_IDENTITY_NAME_LENGTH);
  if (issue) return issue;
  // Invisible characters make names that print the same as another, or reorder what is printed after them.
  // Checked before the spaces: a byte-order mark counts as a space in JavaScript's \s.
  if (holdsInvisible(name)) {
    return 'holds an invisible character (zero-width space, byte-order mark, direction control, line separator or filler)';
  }
  if (/^\s|\s$/u.test(name)) return 'has spaces at the start or end (or is only spaces)';
  // What a decoder writes for bytes that were not UTF-8 (a command line in another encoding): the name given is
  // not the one that would be stored.
  if (name.includes('\ufffd')) return 'holds U+FFFD, the replacement for bytes that were not UTF-8';
  if (name.normalize('NFC') !== name) return "is not in Unicode NFC form (name.normalize('NFC') gives it)";
  return undefined;
}

/**
 * Checks a new identity name: non-empty, not the reserved `'unknown'`, at most
 * {@link MAX_IDENTITY_NAME_LENGTH} characters, no control or invisible format characters, well-formed Unicode
 * in NFC form, no spaces at either end ({@link identityNameIssue}).
 * @throws {@link InvalidOptionsError}
 */
export function checkIdentityName(component: string, identity: unknown): string {
  if (typeof identity !== 'string' || identity.length === 0) {
    throw new InvalidOptionsError(component, 'the identity must be a non-empty string');
  }
  const issue = identityNameIssue(identity);
  // Not quoted: the name is what is wrong with it (a megabyte, control characters).
  if (issue) throw new InvalidOptionsError(component, `the identity name ${issue}`);
  const reserved = reservedIdentityIssue(identity);
  if (reserved) throw new InvalidOptionsError(component, `${reserved} and cannot name an identity`);
  return identity;
}

/**
 * The page `listPage` was asked for, checked: `offset` a whole number ≥ 0, `limit` a whole number ≥ 1.
 * @throws {@link InvalidOptionsError}
 */
export function checkPage(component: string, options: ListPageOptions): ListPageOptions {
  const { offset, limit } = options ?? {};
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidOptionsError(
      component,
      `offset must be a whole number ≥ 0, got ${String(offset).slice(0, 20)}`,
    );
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new InvalidOptionsError(
      component,
      `limit must be a whole number ≥ 1, got ${String(limit).slice(0, 20)}`,
    );
  }
  return options;
}

/**
 * What is wrong with naming a new identity `name` when it is the name of an answer (`unknown`, `no face`), in
 * any case or spelling that reads the same: a client comparing answers without regard to case (or a person
 * reading them) could not tell an identity "Unknown" from an unmatched face. Compared after NFKC (full-width
 * letters, a no-break space), without zero-width joiners, with runs of spaces as one.
 */
export function reservedIdentityIssue(name: string): string | undefined {
  const lower = name
    .normalize('NFKC')
    .replace(/[\u200c\u200d]/gu, '')
    .replace(/\s+/gu, ' ')
    .trim()
    .toLowerCase();
  const as = lower === name ? '' : ` (as "${lower}", in any case)`;
  if (lower === UNKNOWN_IDENTITY) return `"${name}" is reserved${as} for unmatched queries`;
  if (lower === NO_FACE_RESULT) return `"${name}" is reserved${as} for images without a face`;
  return undefined;
}

/**
 * Checks and normalises the examples of one `add` (all of them before anything is stored, so an add is all or
 * nothing); duplicates within the call are dropped (same id).
 *
 * @throws {@link InvalidOptionsError} for a bad identity name or no examples.
 * @throws {@link InvalidInputError} for an embedding of another dimension, zero or not finite.
 */
export function prepareExamples(
  component: string,
  identity: string,
  dimension: number,
  examples: readonly NewExample[],
): PreparedExample[] {
  checkIdentityName(component, identity);
  if (!Array.isArray(examples) || examples.length === 0) {
    throw new InvalidOptionsError(component, `no examples given for identity "${identity}"`);
  }
  const seen = new Set<string>();
  const out: PreparedExample[] = [];
  examples.forEach((example, i) => {
    const exampleName = `identity "${identity}" example ${i}`;
    const where = `${component}: ${exampleName}`;
    const v = example?.embedding;
    if (v === null || typeof v !== 'object' || typeof v.length !== 'number') {
      throw new InvalidInputError(`${where}: embedding is not an array of numbers`);
    }
    if (v.length !== dimension) {
      throw new InvalidInputError(
        `${where}: embedding has ${v.length} values; the store holds ${dimension}-d embeddings`,
      );
    }
    const embedding = new Float32Array(dimension);
    if (!normaliseInto(v, embedding))
      throw new InvalidInputError(`${where}: embedding is zero or not finite`);
    const source = example.source ?? '';
    if (typeof source !== 'string')
      throw new InvalidOptionsError(component, `${exampleName}: source must be a string`);
    const refused = sourceIssue(source);
    if (refused) throw new InvalidOptionsError(component, `${exampleName}: the source ${refused}`);
    const id = exampleId(identity, embedding);
    if (seen.has(id)) return;
    seen.add(id);
    const legacy = legacyNormalised(v, embedding);
    out.push({
      id,
      identity,
      source,
      embedding,
      ...(legacy ? { legacyId: exampleId(identity, legacy) } : {}),
    });
  });
  return out;
}

/**
 * A photo to enroll: its bytes (JPEG, PNG, WebP) or decoded pixels, or a function that reads them when their
 * turn comes (so that a caller with many photos, a folder of them, holds one at a time), and where it came from.
 */
export interface PhotoExample {
  readonly photo: Uint8Array | RgbImage | (() => Promise<Uint8Array | RgbImage>);
  /** Recorded as the example's source (a file name, an upload id). Default `''`. */
  readonly source?: string;
}

/** Options of {@link addFacesFromPhotos}. */
export interface AddFacesOptions {
  readonly identity: string;
  readonly photos: readonly PhotoExample[];
  /** Finds the faces; asked for crops with the embedder's crop policy. */
  readonly detector: Pick<FaceDetector, 'detectFaces'>;
  readonly embedder: Pick<
    FaceEmbedder,
    'modelId' | 'weightsSha256' | 'dimension' | 'preprocessing' | 'embed'
  >;
  /** A photo with several faces: `reject` (default; it is unclear who is meant) or take the `largest`. */
  readonly multipleFaces?: 'reject' | 'largest';
  /** Limits for photos given as bytes. Default: `decodeImage`'s. */
  readonly decodeLimits?: DecodeLimits;
  /**
   * The enrollment quality checks (`enrollGallery`'s, same defaults): a face too small, turned away or blurred
   * refuses the photo, naming the check and the measured value. `false` turns them off.
   */
  readonly quality?: FaceQualityOptions | false;
  /**
   * Pad and detect again a small photo in which the detector finds no face or only tiny ones, i.e. a face crop
   * that fills the frame (`withPrecroppedFallback`), as `enrollGallery` does. Default true.
   */
  readonly precroppedFallback?: boolean;
  /** Called after each photo's face is found (photos are read, decoded and detected one at a time). */
  readonly onProgress?: (event: {
    readonly done: number;
    readonly total: number;
    readonly source: string;
  }) => void;
  /**
   * Look for photos the store already recognises as another person: each face is matched against the store
   * before it is added (with the store's `match`), and those whose nearest identity is another one, at or below
   * `threshold` (the one recognition applies), are passed to `onFound` (a mislabelled photo, or one person
   * under two names: recognition would answer either). They are still added; the caller decides what to say.
   */
  readonly lookAlikes?: {
    readonly threshold: number;
    readonly onFound: (found: readonly LookAlike[]) => void;
  };
}

/**
 * Distance at or below which two embeddings are one face: the same photo, up to the rounding of a distance
 * (enrollment compares the embeddings' bits; a store's match computes distances, and a euclidean one is the
 * square root of a float32 rounding error: 0.0008 for a copy of a photo with face-api.js's net). Far below two
 * photos of one person (0.20–0.25 with that net; a re-encoded copy 0.013–0.106), in either metric.
 */
const SAME_FACE_DISTANCE = 0.005;

/** A photo added under one identity whose face the store already recognises as another. */
export interface LookAlike {
  /** The photo's source (or `photo N`). */
  readonly source: string;
  /** The other identity, the nearest to the face. */
  readonly identity: string;
  /** Its distance, at or below the threshold. */
  readonly distance: number;
}

/**
 * Adds one identity's faces from photos to a store, as one atomic `add`: checks the embedder is the store's
 * (`EmbedderMismatchError` otherwise, before any model runs), then one photo at a time reads it (when given as
 * a function), decodes it and detects its faces with the embedder's crop policy (the geometry it was trained
 * with), keeping only the face's crop; then embeds the crops and adds them. Memory holds one decoded photo at a
 * time, however many are given.
 *
 * @throws InvalidInputError naming the photo when one shows no face, only faces below the embedder's minimum
 *   face size (as enrollment skips them), or several with `multipleFaces: 'reject'`; nothing is added then.
 *   Decoding errors (`InvalidImageError`, …) propagate with the photo's name in front of their message, also
 *   before anything is added.
 * @example
 * const added = await addFacesFromPhotos(store, {
 *   identity: 'alice',
 *   photos: [{ photo: await readFile('alice-1.jpg'), source: 'alice-1.jpg' }],
 *   detector,
 *   embedder,
 * });
 */
export async function addFacesFromPhotos(
  store: Pick<GalleryStore, 'add' | 'assertCompatible'> & Partial<Pick<GalleryStore, 'match'>>,
  options: AddFacesOptions,
): Promise<AddedExample[]> {
  const { identity, photos, detector, embedder } = options;
  checkIdentityName('addFacesFromPhotos', identity);
  if (!Array.isArray(photos) || photos.length === 0) {
    throw new InvalidOptionsError('addFacesFromPhotos', 'no photos given');
  }
  // File bytes given bare (the natural guess) would otherwise fail deep in detection as "not an RgbImage".
  const bare = photos.findIndex((p) => typeof p !== 'object' || p === null || !('photo' in p));
  if (bare !== -1) {
    throw new InvalidOptionsError(
      'addFacesFromPhotos',
      `photos[${bare}] is not { photo, source? }: give each photo as { photo: <file bytes, an RgbImage, or a function resolving to either>, source: <a name for messages> }`,
    );
  }
  // Checked before any photo is read: bad limits are the caller's setting, not one photo's fault.
  parseOptions(decodeLimitsSchema, options.decodeLimits, 'addFacesFromPhotos: decodeLimits');
  const quality =
    options.quality === false || options.quality === undefined
      ? options.quality
      : parseOptions(faceQualityOptionsSchema, options.quality, 'addFacesFromPhotos: quality');
  const thresholds = resolveQualityThresholds(quality, embedder.preprocessing.inputSize);
  store.assertCompatible(embedder);
  // As enrollment finds faces: a photo that is itself a face crop is one face, not none.
  const detectFaces =
    options.precroppedFallback === false
      ? detector.detectFaces.bind(detector)
      : precroppedDetectFaces(detector.detectFaces.bind(detector));
  const nameOf = (i: number) => photos[i]!.source || (photos.length === 1 ? 'the photo' : `photo ${i}`);
  const crops: RgbImage[] = [];
  for (const [i, p] of photos.entries()) {
    const name = nameOf(i);
    let image: RgbImage;
    try {
      const given = typeof p.photo === 'function' ? await p.photo() : p.photo;
      image = given instanceof Uint8Array ? await decodeImage(given, options.decodeLimits) : given;
    } catch (error) {
      // The photo is named in the message (unless its reader named it already); the error keeps its class
      // (InvalidImageError, ImageTooLargeError, …) and code.
      if (FacerecInputError.isInstance(error) && !error.message.includes(name)) {
        error.message = `${name}: ${error.message}`;
      }
      throw error;
    }
    const { faces, crops: cut } = (await detectFaces([image], { crop: embedder.preprocessing.crop }))[0]!;
    if (faces.length === 0) throw new InvalidInputError(`no face found in ${name}`);
    // As enrollment counts them: faces below its default minimum size (a face in the background, a false
    // detection) do not make a photo ambiguous.
    const minSize = thresholds.minFaceSize;
    const candidates = faces.filter((f) => faceSize(f) >= minSize).length;
    if (candidates > 1 && (options.multipleFaces ?? 'reject') === 'reject') {
      throw new InvalidInputError(
        `${candidates} faces found in ${name}: add a photo of one person, or the largest face of this one ` +
          "(multipleFaces: 'largest'; `facerec gallery add --largest`; the collections API's \"largest\": true)",
      );
    }
    let best = 0;
    faces.forEach((f, j) => {
      if (boxArea(f) > boxArea(faces[best]!)) best = j;
    });
    // The face taken is below the minimum (a distant group): refused, as enrollment skips it, rather than
    // adding a face too small to be recognised again.
    if (faceSize(faces[best]!) < minSize) {
      throw new InvalidInputError(
        `addFacesFromPhotos: the largest face in ${name} is too small (${faceSize(faces[best]!).toFixed(0)} px, ` +
          `below ${minSize} px for ${embedder.modelId}): add a photo where the face is larger`,
      );
    }
    // Turned away or blurred: refused as enrollment skips it, naming the check and what it measured.
    const problem = qualityProblem(measureFaceQuality(faces[best]!, cut[best]!.image), thresholds);
    if (problem) {
      throw new InvalidInputError(
        `addFacesFromPhotos: ${name}: ${problem.reason} (${problem.detail}); add a better photo`,
      );
    }
    crops.push(cut[best]!.image);
    options.onProgress?.({ done: i + 1, total: photos.length, source: name });
  }
  const vectors = await embedder.embed(crops);
  if (store.match) {
    // One match for both checks: the nearest identity's distance is given whatever the threshold.
    const lookAlikes = options.lookAlikes;
    const matches = await store.match(vectors, {
      topK: 1,
      threshold: lookAlikes?.threshold ?? SAME_FACE_DISTANCE,
    });
    // The same face stored under another name already (the same photo, labelled twice): refused, as enrollment
    // skips it. Added, it tied with the other name at distance 0, and a leave-one-out calibration failed on it.
    const taken = matches.findIndex((m) => {
      const nearest = m.candidates[0];
      return nearest !== undefined && nearest.identity !== identity && nearest.distance <= SAME_FACE_DISTANCE;
    });
    if (taken !== -1) {
      const other = matches[taken]!.candidates[0]!;
      throw new InvalidInputError(
        `addFacesFromPhotos: ${nameOf(taken)}: the same face as a photo stored as ${visibleText(other.identity)} ` +
          `(distance ${other.distance.toExponential(1)}): one photo under two names; remove it there first if it is ${visibleText(identity)}`,
      );
    }
    if (lookAlikes) {
      // A photo given twice (same source, same face) is reported once, as it is stored once.
      const seen = new Set<string>();
      const found = matches.flatMap((m, i) => {
        const key = `${nameOf(i)}\0${m.identity}\0${m.distance}`;
        if (m.identity === UNKNOWN_IDENTITY || m.identity === identity || seen.has(key)) return [];
        seen.add(key);
        return [{ source: nameOf(i), identity: m.identity, distance: m.distance }];
      });
      if (found.length) lookAlikes.onFound(found);
    }
  }
  return store.add(
    identity,
    vectors.map((embedding, i) => ({ embedding, source: photos[i]!.source ?? '' })),
  );
}
