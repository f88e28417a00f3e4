import { types } from 'node:util';
import { z } from 'zod';
import type { FaceDetection, FaceDetector } from '../contracts/detector.js';
import type { EmbedderPrecision, FaceEmbedder } from '../contracts/embedder.js';
import type { DistanceMetric, Gallery, IdentityCandidate } from '../contracts/gallery.js';
import type {
  DetectorId,
  DetectorOptionsFor,
  EmbedderId,
  EmbedderOptionsFor,
  FaceProvider,
} from '../contracts/provider.js';
import { DisposedError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import { thresholdSchema } from '../gallery/format.js';
import { distanceBetween } from '../gallery/vectors.js';
import { type DecodeLimits, decodeImage, decodeLimitsSchema } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { boxArea } from '../mtcnn/cascade.js';
import { parseOptions } from '../options.js';
import { NoFaceError } from './errors.js';
import { withPrecroppedFallback } from './precropped.js';
import {
  calibrationPrecisionMismatch,
  missingThresholdMessage,
  resolveThreshold,
  type ThresholdSource,
} from './threshold.js';

/**
 * A photo: decoded pixels, or the bytes of a JPEG, PNG or WebP file (a `Uint8Array` or `Buffer`, or the
 * `ArrayBuffer` of `fetch(…).arrayBuffer()`), decoded within `decodeLimits`.
 */
export type Photo = RgbImage | Uint8Array | ArrayBuffer;

/**
 * Options of {@link createFaceRecognizer}. With a built-in id, `embedderOptions` and `detectorOptions` are typed as
 * that model's options (`EmbedderOptionsFor<'faceapi-resnet'>`); with an id only a registry knows, the registry's
 * schema checks them when the model is created.
 */
export interface FaceRecognizerOptions<E extends EmbedderId = EmbedderId, D extends DetectorId = DetectorId> {
  /** Where the models come from, e.g. `createOnnxProvider()`. */
  readonly provider: FaceProvider;
  /** The embedder: an id of the provider's registry (loaded here), or an embedder you already have. */
  readonly embedder: E | FaceEmbedder;
  /** Options of the embedder given by id (refused with an embedder you already have: it has its options). */
  readonly embedderOptions?: EmbedderOptionsFor<E>;
  /** The detector: an id (default: the registry's, `mtcnn`) or a detector you already have. */
  readonly detector?: D | FaceDetector;
  /** Options of the detector given by id, or of the default one (refused with a detector you already have). */
  readonly detectorOptions?: DetectorOptionsFor<D>;
  /** Enrolled identities for {@link FaceRecognizer.recognize}; must have been built with the same embedder. */
  readonly gallery?: Gallery;
  /** Distance for {@link FaceRecognizer.verify}. Default `euclidean`, or the gallery's metric. */
  readonly metric?: DistanceMetric;
  /** Limits for photos given as bytes. Default: `decodeImage`'s (10 MiB, 25 megapixels). */
  readonly decodeLimits?: DecodeLimits;
  /**
   * Pad and detect again a small photo in which the detector finds no face or only tiny ones: a face crop
   * that fills the frame ({@link withPrecroppedFallback}). Default true.
   */
  readonly precroppedFallback?: boolean;
}

/**
 * One face of a photo and its embedding. Sent as JSON, leave the embedding out or convert it (`Array.from`):
 * `JSON.stringify` writes a `Float32Array` as an object of numbered keys.
 */
export interface EmbeddedFace {
  readonly face: FaceDetection;
  /** L2-normalised embedding of the face, cut with the embedder's crop policy. */
  readonly embedding: Float32Array;
}

/** One face of a photo and who it is. */
export interface RecognizedFace extends EmbeddedFace {
  /** The gallery identity, or `'unknown'` when the nearest one is farther than the threshold. */
  readonly identity: string;
  /**
   * The distance to that identity (to the nearest one when `unknown`); `Infinity` when the gallery holds no
   * identity (which `JSON.stringify` writes as `null`).
   */
  readonly distance: number;
  /** The nearest identities, nearest first. */
  readonly candidates: readonly IdentityCandidate[];
  /** The threshold the face was matched at. */
  readonly threshold: number;
  /**
   * Where it came from: `option`, `gallery` (calibrated), or `registry` (the embedder's recommended threshold,
   * used for a gallery that was never calibrated, i.e. threshold 0).
   */
  readonly thresholdSource: ThresholdSource;
}

/**
 * The answer of {@link FaceRecognizer.verify}: are the largest faces of two photos the same person?
 * `verified` is `distance ≤ threshold`.
 */
export interface Verification {
  readonly verified: boolean;
  readonly distance: number;
  readonly threshold: number;
  readonly metric: DistanceMetric;
  /** Where the threshold came from. */
  readonly thresholdSource: ThresholdSource;
  /** Model id of the embedder that compared the faces. */
  readonly embedder: string;
  /** That embedder's precision (`fp32` or `int8`): a threshold calibrated at the other one may not fit. */
  readonly precision: EmbedderPrecision;
  /** The face compared in each photo: its largest (by box area). */
  readonly faces: readonly [FaceDetection, FaceDetection];
  /** Faces found in each photo. */
  readonly faceCounts: readonly [number, number];
  /** Things to know about the answer, e.g. that a photo showed several faces and the largest was compared. */
  readonly warnings: readonly string[];
}

/** Options of {@link FaceRecognizer.verify}. */
export interface VerifyOptions {
  /**
   * Same person when the distance is at most this. Default: the gallery's threshold (when calibrated),
   * else the embedder's recommended one from the registry.
   */
  readonly threshold?: number;
  /** Names of the two photos (e.g. file names) for errors and warnings. Default `the first photo`, `the second photo`. */
  readonly names?: readonly [string, string];
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
  /**
   * Things to know about this composition, found when it was created: e.g. that the gallery's threshold was
   * calibrated at another embedder precision than the embedder runs at (its false-accept rate may differ). Empty
   * when there is nothing to say.
   */
  readonly warnings: readonly string[];
  /**
   * Every face of a photo, largest first. The calling thread's event loop waits while the models run
   * (onnxruntime-node runs a network with it waiting) and runs MTCNN's work between them (decoding does not: it
   * runs on libuv's threads): in pieces of up to about 50 ms for a 1280-px frame, up to a second for a
   * 25-megapixel one. A server that must answer other requests meanwhile runs it in a worker thread (`facerec
   * serve` runs its models in `--workers` threads).
   */
  detect(photo: Photo): Promise<FaceDetection[]>;
  /** Every face of a photo with its embedding, largest first. */
  embed(photo: Photo): Promise<EmbeddedFace[]>;
  /**
   * Every face of a photo with its gallery identity (needs `gallery`). A gallery that was never calibrated
   * (threshold 0) is matched at the embedder's recommended threshold when the registry has one
   * (`thresholdSource: 'registry'`).
   */
  recognize(photo: Photo, options?: RecognizeOptions): Promise<RecognizedFace[]>;
  /**
   * 1:1 verification: the largest face of each photo (by box area; a photo with several faces adds a warning).
   * @throws NoFaceError naming the photo that has no face; InvalidOptionsError when no threshold is known.
   */
  verify(a: Photo, b: Photo, options?: VerifyOptions): Promise<Verification>;
  /**
   * Releases what this recognizer loaded (a detector or embedder passed in is left to its owner); calls made
   * after it throw `DisposedError`.
   */
  dispose(): Promise<void>;
}

/** {@link RecognizeOptions}, checked before any work. */
const recognizeOptionsSchema = z
  .strictObject({ topK: z.number().int().positive().optional(), threshold: thresholdSchema.optional() })
  .optional();

const optionsSchema = z
  .strictObject({
    provider: z.custom<FaceProvider>(
      (v) => typeof v === 'object' && v !== null && typeof (v as FaceProvider).embedder === 'function',
      'expected a FaceProvider (e.g. createOnnxProvider())',
    ),
    embedder: z.union([
      z.string().min(1),
      z.custom<FaceEmbedder>((v) => typeof v === 'object' && v !== null),
    ]),
    embedderOptions: z.unknown().optional(),
    detector: z
      .union([z.string().min(1), z.custom<FaceDetector>((v) => typeof v === 'object' && v !== null)])
      .optional(),
    detectorOptions: z.unknown().optional(),
    gallery: z.custom<Gallery>((v) => typeof v === 'object' && v !== null).optional(),
    metric: z.enum(['euclidean', 'cosine']).optional(),
    decodeLimits: decodeLimitsSchema,
    precroppedFallback: z.boolean().default(true),
  })
  // Options next to a model you already have would be ignored: said, not dropped.
  .refine((o) => o.embedderOptions === undefined || typeof o.embedder !== 'object', {
    path: ['embedderOptions'],
    error:
      'apply to an embedder given by id; the embedder given is already made (give its options where you made ' +
      'it, or give its id here)',
  })
  .refine((o) => o.detectorOptions === undefined || typeof o.detector !== 'object', {
    path: ['detectorOptions'],
    error:
      'apply to a detector given by id; the detector given is already made (give its options where you made ' +
      'it, or give its id here)',
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
export async function createFaceRecognizer<
  E extends EmbedderId = EmbedderId,
  D extends DetectorId = DetectorId,
>(options: FaceRecognizerOptions<E, D>): Promise<FaceRecognizer> {
  const o = parseOptions(optionsSchema, options, 'createFaceRecognizer');
  const { provider } = o;
  const owned: { dispose(): Promise<void> }[] = [];
  const given =
    typeof o.detector === 'object'
      ? o.detector
      : provider.detector(o.detector ?? provider.registry.defaults.detector, o.detectorOptions);
  if (typeof o.detector !== 'object') owned.push(given);
  const detector = o.precroppedFallback ? withPrecroppedFallback(given) : given;
  let embedder: FaceEmbedder;
  let empty = false;
  try {
    embedder =
      typeof o.embedder === 'object' ? o.embedder : await provider.embedder(o.embedder, o.embedderOptions);
    if (typeof o.embedder !== 'object') owned.push(embedder);
    await detector.ready();
    o.gallery?.assertCompatible(embedder);
    // Only for a warning: a store out of reach now is its searches' concern, not a reason to refuse to start.
    empty = (await o.gallery?.identities().catch(() => undefined))?.length === 0;
  } catch (error) {
    await Promise.all(owned.map((m) => m.dispose()));
    throw error;
  }
  const gallery = o.gallery;
  const metric = o.metric ?? gallery?.metric ?? 'euclidean';
  const crop = embedder.preprocessing.crop;
  const mismatch = gallery && calibrationPrecisionMismatch(gallery.calibration, embedder.precision ?? 'fp32');
  const warnings = mismatch ? [mismatch] : [];
  if (gallery && o.metric && o.metric !== gallery.metric) {
    warnings.push(
      `verify compares ${o.metric} distances and the gallery is ${gallery.metric}: verify does not use the ` +
        `gallery's threshold (it uses the one you pass, else the registry's ${o.metric} one); recognize matches ` +
        `with the gallery's metric and threshold`,
    );
  }
  // A gallery of no one answers `unknown` at distance Infinity for every face: said once, as the CLI says it.
  if (empty) {
    warnings.push(
      'the gallery holds no identities yet, so every face will be "unknown" at distance Infinity (add some to it: addFacesFromPhotos)',
    );
  }
  // A gallery never calibrated (threshold 0) for an embedder that ships no threshold names no one: said once
  // here (recognize's `thresholdSource` would say only 'gallery'); a threshold passed to recognize still works.
  if (
    gallery &&
    !empty &&
    !resolveThreshold({
      gallery,
      registry: provider.registry,
      modelId: gallery.embedder.modelId,
      metric: gallery.metric,
    })
  ) {
    warnings.push(
      `${missingThresholdMessage(provider.registry, gallery.embedder.modelId, gallery.metric)} and the gallery ` +
        'was never calibrated (threshold 0), so every face will be "unknown" unless recognize is given ' +
        '{ threshold }: calibrate the gallery (calibrateThresholdLeaveOneOut, facerec gallery calibrate)',
    );
  }
  let disposed = false;
  const live = () => {
    if (disposed) throw new DisposedError('this FaceRecognizer');
  };
  const decode = (photo: Photo) => {
    live();
    // Any realm's ArrayBuffer (or a SharedArrayBuffer): `instanceof` would miss one from a vm context.
    if (types.isAnyArrayBuffer(photo)) return decodeImage(new Uint8Array(photo), o.decodeLimits);
    // Named for what a photo may be here (file bytes too), not only as the detector's RgbImage.
    if (typeof photo === 'string') {
      throw new InvalidInputError(
        'the photo is a string (a path?), not file bytes or an RgbImage: pass await readImageFile(path)',
      );
    }
    if (typeof photo !== 'object' || photo === null) {
      throw new InvalidInputError(
        `the photo is ${photo === null ? 'null' : typeof photo}, not file bytes (a Uint8Array or ArrayBuffer) or an RgbImage`,
      );
    }
    return photo instanceof Uint8Array ? decodeImage(photo, o.decodeLimits) : Promise.resolve(photo);
  };

  const embed = async (photo: Photo): Promise<EmbeddedFace[]> => {
    const [found] = await detector.detectFaces([await decode(photo)], { crop });
    const { faces, crops } = found!;
    const vectors = await embedder.embed(crops.map((c) => c.image));
    return faces.map((face, i) => ({ face, embedding: vectors[i]! }));
  };

  const threshold = (explicit: number | undefined) => {
    if (explicit !== undefined && !thresholdSchema.safeParse(explicit).success)
      throw new InvalidOptionsError(
        'verify',
        `threshold must be a finite number ≥ 0 (a distance), got ${explicit}`,
      );
    const resolved = resolveThreshold({
      explicit,
      gallery,
      registry: provider.registry,
      modelId: embedder.modelId,
      metric,
    });
    if (resolved) return { threshold: resolved.value, thresholdSource: resolved.source };
    throw new InvalidOptionsError(
      'verify',
      `${missingThresholdMessage(provider.registry, embedder.modelId, metric)}: pass { threshold }, or a ` +
        'calibrated gallery (facerec gallery calibrate)',
    );
  };

  return {
    detector,
    embedder,
    gallery,
    warnings,
    detect: async (photo) => detector.detect(await decode(photo)),
    embed,
    async recognize(photo, recognizeOptions = {}) {
      live();
      if (!gallery) throw new InvalidOptionsError('recognize', 'createFaceRecognizer was given no gallery');
      parseOptions(recognizeOptionsSchema, recognizeOptions, 'recognize');
      const faces = await embed(photo);
      if (!faces.length) return [];
      // Explicit, else calibrated, else the registry's; a gallery with neither keeps its own 0 (all unknown).
      const chosen = resolveThreshold({
        explicit: recognizeOptions.threshold,
        gallery,
        registry: provider.registry,
        modelId: gallery.embedder.modelId,
        metric: gallery.metric,
      }) ?? { value: gallery.threshold, source: 'gallery' as const };
      const matches = await gallery.match(
        faces.map((f) => f.embedding),
        { ...recognizeOptions, threshold: chosen.value },
      );
      return faces.map((f, i) => ({
        ...f,
        ...matches[i]!,
        threshold: chosen.value,
        thresholdSource: chosen.source,
      }));
    },
    async verify(a, b, verifyOptions = {}) {
      live();
      const chosen = threshold(verifyOptions.threshold);
      const names = verifyOptions.names ?? ['the first photo', 'the second photo'];
      const images = await Promise.all([decode(a), decode(b)]);
      const found = await detector.detectFaces(images, { crop });
      const warnings: string[] = [];
      // The largest face of each photo: in a group photo, the person the photo is most likely about.
      const picked = found.map(({ faces, crops }, p) => {
        if (!faces.length) throw new NoFaceError(names[p]!);
        let best = 0;
        faces.forEach((f, i) => {
          if (boxArea(f) > boxArea(faces[best]!)) best = i;
        });
        if (faces.length > 1) {
          const box = faces[best]!.box.map((v) => Math.round(v)).join(', ');
          warnings.push(`${names[p]} shows ${faces.length} faces; compared the largest, at [${box}]`);
        }
        return { face: faces[best]!, crop: crops[best]!.image, count: faces.length };
      });
      const [ea, eb] = await embedder.embed(picked.map((p) => p.crop));
      const distance = distanceBetween(metric, ea!, eb!);
      const [pa, pb] = picked as [(typeof picked)[0], (typeof picked)[0]];
      return {
        ...chosen,
        verified: distance <= chosen.threshold,
        distance,
        metric,
        embedder: embedder.modelId,
        precision: embedder.precision ?? 'fp32',
        faces: [pa.face, pb.face],
        faceCounts: [pa.count, pb.count],
        warnings,
      };
    },
    async dispose() {
      disposed = true;
      await Promise.all(owned.map((m) => m.dispose()));
    },
  };
}
