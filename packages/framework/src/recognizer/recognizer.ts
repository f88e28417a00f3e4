import { z } from 'zod';
import type { FaceDetection, FaceDetector } from '../contracts/detector.js';
import type { FaceEmbedder } from '../contracts/embedder.js';
import type { DistanceMetric, Gallery, IdentityCandidate } from '../contracts/gallery.js';
import type { FaceProvider } from '../contracts/provider.js';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import { distanceFromDot, dot } from '../gallery/vectors.js';
import { type DecodeLimits, decodeImage } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { boxArea } from '../mtcnn/cascade.js';
import { parseOptions } from '../options.js';

/** A photo: decoded pixels, or the bytes of a JPEG, PNG or WebP file (decoded with `decodeImage`'s limits). */
export type Photo = RgbImage | Uint8Array;

/** Options of {@link createFaceRecognizer}. */
export interface FaceRecognizerOptions {
  /** Where the models come from, e.g. `createOnnxProvider()`. */
  readonly provider: FaceProvider;
  /** The embedder: an id of the provider's registry (loaded here), or an embedder you already have. */
  readonly embedder: string | FaceEmbedder;
  /** Options of the embedder, when it is given by id. */
  readonly embedderOptions?: unknown;
  /** The detector: an id (default: the registry's, `mtcnn`) or a detector you already have. */
  readonly detector?: string | FaceDetector;
  /** Options of the detector, when it is given by id. */
  readonly detectorOptions?: unknown;
  /** Enrolled identities for {@link FaceRecognizer.recognize}; must have been built with the same embedder. */
  readonly gallery?: Gallery;
  /** Distance for {@link FaceRecognizer.verify}. Default `euclidean`, or the gallery's metric. */
  readonly metric?: DistanceMetric;
  /** Limits for photos given as bytes. Default: `decodeImage`'s (10 MiB, 25 megapixels). */
  readonly decodeLimits?: DecodeLimits;
}

/** One face of a photo and its embedding. */
export interface EmbeddedFace {
  readonly face: FaceDetection;
  /** L2-normalised embedding of the face, cut with the embedder's crop policy. */
  readonly embedding: Float32Array;
}

/** One face of a photo and who it is. */
export interface RecognizedFace extends EmbeddedFace {
  /** The gallery identity, or `'unknown'` when the nearest one is farther than the threshold. */
  readonly identity: string;
  readonly distance: number;
  /** The nearest identities, nearest first. */
  readonly candidates: readonly IdentityCandidate[];
}

/** The answer of {@link FaceRecognizer.verify}: are the largest faces of two photos the same person? */
export interface Verification {
  readonly same: boolean;
  readonly distance: number;
  readonly threshold: number;
  readonly metric: DistanceMetric;
  /** Where the threshold came from. */
  readonly thresholdSource: 'option' | 'gallery' | 'registry';
  /** The face compared in each photo (its largest). */
  readonly faces: readonly [FaceDetection, FaceDetection];
}

/** Options of {@link FaceRecognizer.verify}. */
export interface VerifyOptions {
  /** Same person when the distance is at most this. Default: the gallery's threshold, else the registry's. */
  readonly threshold?: number;
}

/** Options of {@link FaceRecognizer.recognize}. */
export interface RecognizeOptions {
  /** Candidates per face. Default 1. */
  readonly topK?: number;
  /** Override the gallery's threshold. */
  readonly threshold?: number;
}

/**
 * Detection, embedding and matching composed once: every face is cut with the embedder's own crop policy,
 * so switching embedders is one id. Detector and embedder run one call at a time each (they share cores).
 */
export interface FaceRecognizer {
  readonly detector: FaceDetector;
  readonly embedder: FaceEmbedder;
  readonly gallery: Gallery | undefined;
  /** Every face of a photo, largest first. */
  detect(photo: Photo): Promise<FaceDetection[]>;
  /** Every face of a photo with its embedding, largest first. */
  embed(photo: Photo): Promise<EmbeddedFace[]>;
  /** Every face of a photo with its gallery identity (needs `gallery`). */
  recognize(photo: Photo, options?: RecognizeOptions): Promise<RecognizedFace[]>;
  /** 1:1 verification of the largest face of each photo. Throws `InvalidInputError` when a photo has no face. */
  verify(a: Photo, b: Photo, options?: VerifyOptions): Promise<Verification>;
  /** Releases what this recognizer loaded (a detector or embedder passed in is left to its owner). */
  dispose(): Promise<void>;
}

const optionsSchema = z.strictObject({
  provider: z.custom<FaceProvider>(
    (v) => typeof v === 'object' && v !== null && typeof (v as FaceProvider).embedder === 'function',
    'expected a FaceProvider (e.g. createOnnxProvider())',
  ),
  embedder: z.union([z.string().min(1), z.custom<FaceEmbedder>((v) => typeof v === 'object' && v !== null)]),
  embedderOptions: z.unknown().optional(),
  detector: z
    .union([z.string().min(1), z.custom<FaceDetector>((v) => typeof v === 'object' && v !== null)])
    .optional(),
  detectorOptions: z.unknown().optional(),
  gallery: z.custom<Gallery>((v) => typeof v === 'object' && v !== null).optional(),
  metric: z.enum(['euclidean', 'cosine']).optional(),
  decodeLimits: z.custom<DecodeLimits>((v) => typeof v === 'object' && v !== null).optional(),
});

/**
 * Builds a {@link FaceRecognizer}: loads the embedder and the detector (by id from the provider, or uses the
 * ones given), and checks the gallery was built with this embedder.
 *
 * @throws InvalidOptionsError for bad options; NoSuchModelError for an unknown id; EmbedderMismatchError when
 *   the gallery was built with another embedder.
 * @example
 * const recognizer = await createFaceRecognizer({ provider: createOnnxProvider(), embedder: 'faceapi-resnet' });
 * const faces = await recognizer.embed(await readFile('group.jpg'));
 */
export async function createFaceRecognizer(options: FaceRecognizerOptions): Promise<FaceRecognizer> {
  const o = parseOptions(optionsSchema, options, 'createFaceRecognizer');
  const { provider } = o;
  const owned: { dispose(): Promise<void> }[] = [];
  const detector =
    typeof o.detector === 'object'
      ? o.detector
      : provider.detector(o.detector ?? provider.registry.defaults.detector, o.detectorOptions);
  if (typeof o.detector !== 'object') owned.push(detector);
  let embedder: FaceEmbedder;
  try {
    embedder =
      typeof o.embedder === 'object' ? o.embedder : await provider.embedder(o.embedder, o.embedderOptions);
    if (typeof o.embedder !== 'object') owned.push(embedder);
    await detector.ready();
    o.gallery?.assertCompatible(embedder);
  } catch (error) {
    await Promise.all(owned.map((m) => m.dispose()));
    throw error;
  }
  const gallery = o.gallery;
  const metric = o.metric ?? gallery?.metric ?? 'euclidean';
  const crop = embedder.preprocessing.crop;
  const decode = (photo: Photo) =>
    photo instanceof Uint8Array ? decodeImage(photo, o.decodeLimits) : Promise.resolve(photo);

  const embed = async (photo: Photo): Promise<EmbeddedFace[]> => {
    const [found] = await detector.detectFaces([await decode(photo)], { crop });
    const { faces, crops } = found!;
    const vectors = await embedder.embed(crops.map((c) => c.image));
    return faces.map((face, i) => ({ face, embedding: vectors[i]! }));
  };

  const largest = async (photo: Photo, which: string): Promise<EmbeddedFace> => {
    const faces = await embed(photo);
    if (!faces.length) throw new InvalidInputError(`verify: no face found in ${which}`);
    return faces.reduce((best, f) => (boxArea(f.face) > boxArea(best.face) ? f : best));
  };

  const threshold = (explicit: number | undefined): Pick<Verification, 'threshold' | 'thresholdSource'> => {
    if (explicit !== undefined) {
      if (!Number.isFinite(explicit))
        throw new InvalidOptionsError('verify', 'threshold must be a finite number');
      return { threshold: explicit, thresholdSource: 'option' };
    }
    if (gallery && gallery.metric === metric) {
      return { threshold: gallery.threshold, thresholdSource: 'gallery' };
    }
    const id = typeof o.embedder === 'string' ? o.embedder : undefined;
    const recommended = id === undefined ? undefined : provider.registry.embedder(id).thresholds[metric];
    if (recommended) return { threshold: recommended.value, thresholdSource: 'registry' };
    throw new InvalidOptionsError(
      'verify',
      `no ${metric} threshold is known for ${embedder.modelId}: pass { threshold }, or a calibrated gallery ` +
        '(facerec gallery calibrate)',
    );
  };

  return {
    detector,
    embedder,
    gallery,
    detect: async (photo) => detector.detect(await decode(photo)),
    embed,
    async recognize(photo, recognizeOptions = {}) {
      if (!gallery) throw new InvalidOptionsError('recognize', 'createFaceRecognizer was given no gallery');
      const faces = await embed(photo);
      if (!faces.length) return [];
      const matches = await gallery.match(
        faces.map((f) => f.embedding),
        recognizeOptions,
      );
      return faces.map((f, i) => ({ ...f, ...matches[i]! }));
    },
    async verify(a, b, verifyOptions = {}) {
      const chosen = threshold(verifyOptions.threshold);
      const [fa, fb] = await Promise.all([largest(a, 'the first photo'), largest(b, 'the second photo')]);
      const distance = distanceFromDot(metric, dot(fa.embedding, fb.embedding));
      return { ...chosen, same: distance <= chosen.threshold, distance, metric, faces: [fa.face, fb.face] };
    },
    async dispose() {
      await Promise.all(owned.map((m) => m.dispose()));
    },
  };
}
