/**
 * Face quality at enrollment: a gallery example is only as good as its photo, and a poor one (a tiny face
 * blown up to the embedder's input, a face turned away, a blurred frame) drags every later match of that
 * identity. Each check is cheap and provider-free; the thresholds are options and every skip says which
 * check failed, with the measured value.
 */
import { z } from 'zod';
import type { FaceDetection } from '../contracts/detector.js';
import type { RgbImage } from '../image/types.js';

/** Thresholds of the enrollment quality checks; each check is off when its threshold is 0 (yaw: 90). */
export interface FaceQualityOptions {
  /**
   * Smallest face accepted, in pixels: the larger side of the detection box. Default: half the embedder's
   * input width (a smaller face would be blown up more than 2× to the embedder's input, e.g. below 75 px for
   * face-api's 150 px net, 80 px for InceptionResnetV1's 160 px).
   */
  readonly minFaceSize?: number;
  /** Largest head turn accepted, in degrees, estimated from the 5 landmarks ({@link estimateYaw}). Default 40. */
  readonly maxYaw?: number;
  /**
   * Lowest sharpness accepted: the variance of the Laplacian of the grey face crop ({@link sharpness}). Default 10.
   */
  readonly minSharpness?: number;
}

/** The default {@link FaceQualityOptions.minFaceSize} for an embedder taking `inputSize` crops: half its width. */
export function defaultMinFaceSize(inputSize: { readonly width: number }): number {
  return inputSize.width / 2;
}

/**
 * The thresholds in force for `quality` (`false`: every check off) and an embedder taking `inputSize` crops,
 * each defaulted as {@link FaceQualityOptions} says.
 */
export function resolveQualityThresholds(
  quality: FaceQualityOptions | false | undefined,
  inputSize: { readonly width: number },
): Required<FaceQualityOptions> {
  if (quality === false) return { minFaceSize: 0, maxYaw: 90, minSharpness: 0 };
  return {
    minFaceSize: quality?.minFaceSize ?? defaultMinFaceSize(inputSize),
    maxYaw: quality?.maxYaw ?? DEFAULT_MAX_YAW,
    minSharpness: quality?.minSharpness ?? DEFAULT_MIN_SHARPNESS,
  };
}

/** The default {@link FaceQualityOptions.maxYaw}, in degrees. */
export const DEFAULT_MAX_YAW = 40;
/** The default {@link FaceQualityOptions.minSharpness}. */
export const DEFAULT_MIN_SHARPNESS = 10;

/** Strict schema of {@link FaceQualityOptions}. */
export const faceQualityOptionsSchema = z.strictObject({
  minFaceSize: z.number().min(0).optional(),
  maxYaw: z.number().min(0).max(90).optional(),
  minSharpness: z.number().min(0).optional(),
});

/** What the quality checks measured on one face. */
export interface FaceQuality {
  /** Larger side of the detection box, in pixels. */
  readonly size: number;
  /** Estimated head turn, in degrees (0 = frontal); see {@link estimateYaw}. */
  readonly yaw: number;
  /** Variance of the Laplacian of the grey crop; see {@link sharpness}. */
  readonly sharpness: number;
}

/** Why a face failed a quality check. */
export type QualityReason = 'face too small' | 'strong yaw' | 'blurry';

/**
 * Head turn (yaw) in degrees, from MTCNN's 5 landmarks: the nose tip's offset from the eyes' midpoint along
 * the line through the eyes, over half the eye distance, as an angle: `atan(offset / (eyeDistance / 2))`.
 * A rough estimate (it takes the nose tip to stand half an eye distance in front of the eyes, and ignores
 * pitch), but monotone in the turn and free of roll. Frontal photos measure under 10°; on the labelled
 * photos in `../shared/faces` every face but one turned-away background face measures under 28°.
 */
export function estimateYaw(landmarks: FaceDetection['landmarks']): number {
  const [left, right, nose] = landmarks;
  if (!left || !right || !nose) return 0;
  const ex = right[0] - left[0];
  const ey = right[1] - left[1];
  const distance = Math.hypot(ex, ey);
  if (distance === 0) return 90;
  const offset =
    ((nose[0] - (left[0] + right[0]) / 2) * ex + (nose[1] - (left[1] + right[1]) / 2) * ey) / distance;
  return (Math.atan2(Math.abs(offset), distance / 2) * 180) / Math.PI;
}

/**
 * Sharpness of an RGB image: the variance of its grey levels' 4-neighbour Laplacian (interior pixels), the
 * usual focus measure. Scale-dependent, so measure it on the embedder's crop (a fixed size). Rows and columns
 * of pure black at the edges, and the one next to them, are left out first: they are the padding of a crop whose square went past the
 * frame, and the hard edge between padding and face would otherwise read as detail (a blurred face shot
 * measured sharper than the original). On face-api's crops the 51 labelled photos in `../shared/faces` measure
 * 35–3000; the same photos blurred so that the crop sees a 2-pixel Gaussian, 5–43 (all but 2 under 26); bbt's
 * amy3 blurred by 6 pixels, 2.1 (37 times less than the photo; 470, twice as sharp, before padding was left out).
 * Written here rather than with sharp's convolve: that would need an encode round trip for 22,500 pixels.
 */
export function sharpness(image: RgbImage): number {
  const { width: w, height: h, data } = image;
  const black = (x: number, y: number) => {
    const i = 3 * (y * w + x);
    return data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 0;
  };
  const blackRow = (y: number) => {
    for (let x = 0; x < w; x++) if (!black(x, y)) return false;
    return true;
  };
  const blackColumn = (x: number) => {
    for (let y = 0; y < h; y++) if (!black(x, y)) return false;
    return true;
  };
  let top = 0;
  let bottom = h;
  let left = 0;
  let right = w;
  while (top < bottom && blackRow(top)) top++;
  while (bottom > top && blackRow(bottom - 1)) bottom--;
  while (left < right && blackColumn(left)) left++;
  while (right > left && blackColumn(right - 1)) right--;
  // The row or column next to padding can blend face and black (resampling): leave it out too.
  if (top > 0) top++;
  if (bottom < h) bottom--;
  if (left > 0) left++;
  if (right < w) right--;
  if (right - left < 3 || bottom - top < 3) return 0;
  const grey = (x: number, y: number) => {
    const i = 3 * (y * w + x);
    return 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
  };
  let sum = 0;
  let squares = 0;
  for (let y = top + 1; y < bottom - 1; y++) {
    for (let x = left + 1; x < right - 1; x++) {
      const v = grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1) - 4 * grey(x, y);
      sum += v;
      squares += v * v;
    }
  }
  const n = (right - left - 2) * (bottom - top - 2);
  return squares / n - (sum / n) ** 2;
}

/** A face's size for {@link FaceQualityOptions.minFaceSize}: the larger side of its detection box, in pixels. */
export function faceSize(face: Pick<FaceDetection, 'box'>): number {
  const [x1, y1, x2, y2] = face.box;
  return Math.max(x2 - x1, y2 - y1);
}

/** Measures a detected face and its crop. */
export function measureFaceQuality(face: FaceDetection, crop: RgbImage): FaceQuality {
  return {
    size: faceSize(face),
    yaw: estimateYaw(face.landmarks),
    sharpness: sharpness(crop),
  };
}

/**
 * The first quality check a face fails (size, then yaw, then sharpness), with the measured value and the
 * threshold; `undefined` when it passes them all.
 */
export function qualityProblem(
  quality: FaceQuality,
  thresholds: Required<FaceQualityOptions>,
): { reason: QualityReason; detail: string } | undefined {
  const { minFaceSize, maxYaw, minSharpness } = thresholds;
  if (quality.size < minFaceSize) {
    return {
      reason: 'face too small',
      detail: `face ${quality.size.toFixed(0)} px, below minFaceSize ${minFaceSize} px`,
    };
  }
  if (maxYaw < 90 && quality.yaw > maxYaw) {
    return {
      reason: 'strong yaw',
      detail: `head turned about ${quality.yaw.toFixed(0)}°, above maxYaw ${maxYaw}°`,
    };
  }
  if (quality.sharpness < minSharpness) {
    return {
      reason: 'blurry',
      detail: `sharpness ${quality.sharpness.toFixed(1)} (variance of the Laplacian), below minSharpness ${minSharpness}`,
    };
  }
  return undefined;
}
