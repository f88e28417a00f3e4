import type { RgbImage } from '../image/types.js';
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

/**
 * A face detector. Implementations must return, for every image, its faces sorted **largest box area
 * first**, and give the same detections for an image whether it is passed alone or inside a batch.
 *
 * @example
 * const detector = createOnnxProvider().detector('mtcnn');
 * const faces = await detector.detect(await decodeImage(bytes));
 */
export interface FaceDetector {
  readonly specificationVersion: SpecificationVersion;
  /** Provider name, e.g. `onnx`. */
  readonly provider: string;
  /** Model id, e.g. `mtcnn`. */
  readonly modelId: string;
  /** Detect faces in one image. Throws `InvalidInputError` for a malformed image. */
  detect(image: RgbImage): Promise<FaceDetection[]>;
  /** Detect faces in several images (which may have different sizes); one result array per image. */
  detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]>;
  /** Release the model. Later calls reject with `DisposedError`. */
  dispose(): Promise<void>;
}
