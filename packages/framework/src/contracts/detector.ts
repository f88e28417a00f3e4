import type { RgbImage } from '../image/types.js';
import type { CropPolicy } from './embedder.js';
import type { SpecificationVersion } from './version.js';

/** A point `[x, y]` in image pixels. */
export type Point = [x: number, y: number];

/** An axis-aligned box `[x1, y1, x2, y2]` in image pixels (float; may extend past the image edges). */
export type Box = [x1: number, y1: number, x2: number, y2: number];

/** Five facial landmarks: left eye, right eye, nose, left mouth corner, right mouth corner. */
export type FiveLandmarks = [Point, Point, Point, Point, Point];

/** One detected face. */
export interface FaceDetection {
  /** Face box `[x1, y1, x2, y2]`. */
  box: Box;
  /** Detector confidence in `[0, 1]`. */
  score: number;
  /** Five landmarks, in the order of {@link FiveLandmarks}. */
  landmarks: FiveLandmarks;
}

/** A face cut out of an image for an embedder. */
export interface FaceCrop {
  /** The detection it was cut from. */
  readonly detection: FaceDetection;
  /** The integer region actually cut out `[x1, y1, x2, y2]` (after shape, margin and clamping). */
  readonly cropBox: Box;
  /** uint8 RGB crop of the requested `crop.size`. */
  readonly image: RgbImage;
}

/** Detections and, when asked for, crops of one image. */
export interface DetectedFaces {
  readonly faces: FaceDetection[];
  /** One crop per face, in the same order; empty when no `crop` policy was given. */
  readonly crops: FaceCrop[];
}

/** Options of {@link FaceDetector.detectFaces}. */
export interface DetectFacesOptions {
  /**
   * Cut every face out with this policy — pass the embedder's `preprocessing.crop`, so the crops are exactly
   * what that embedder takes. Without it, no crops are made.
   */
  readonly crop?: CropPolicy;
}

/** Frame size for {@link FaceDetector.warmUp}. */
export interface WarmUpFrame {
  readonly width: number;
  readonly height: number;
}

/**
 * A face detector. Implementations must return, for every image, its faces sorted **largest box area
 * first**, in the image's pixel coordinates, give the same detections for an image whether it is passed alone or
 * inside a batch, and leave the images they are given unchanged (`describeDetectorConformance` checks each).
 *
 * @example
 * const detector = createOnnxProvider().detector('mtcnn');
 * await detector.ready();
 * const faces = await detector.detect(await decodeImage(bytes));
 * const [found] = await detector.detectFaces([image], { crop: embedder.preprocessing.crop });
 */
export interface FaceDetector {
  readonly specificationVersion: SpecificationVersion;
  /** Provider name, e.g. `onnx`. */
  readonly provider: string;
  /** Model id, e.g. `mtcnn`. */
  readonly modelId: string;
  /** Resolves once the model is loaded (loading starts at construction); rejects if loading failed. */
  ready(): Promise<void>;
  /**
   * Pays the one-off cost of the first detections ahead of time (runtime memory growth, compilation) on a
   * synthetic frame of this size; results are discarded. Call it at startup, e.g. in a Lambda's init phase.
   */
  warmUp(frame?: WarmUpFrame): Promise<void>;
  /** Detect faces in one image. Throws `InvalidInputError` for a malformed image. */
  detect(image: RgbImage): Promise<FaceDetection[]>;
  /** Detect faces in several images (which may have different sizes); one result array per image. */
  detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]>;
  /** Detect faces in each image and, with `options.crop`, cut each face out with that policy. */
  detectFaces(images: readonly RgbImage[], options?: DetectFacesOptions): Promise<DetectedFaces[]>;
  /** Release the model. Later calls reject with `DisposedError`. */
  dispose(): Promise<void>;
}
