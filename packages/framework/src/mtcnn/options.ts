import { z } from 'zod';
import { parseOptions } from '../options.js';

/** How a single face is chosen when `keepAll` is false (facenet-pytorch's `selection_method`). */
export type SelectionMethod = 'probability' | 'largest' | 'largest_over_threshold' | 'center_weighted_size';

/**
 * MTCNN options, named as facenet-pytorch names them (camel-cased). All optional; see
 * {@link DEFAULT_MTCNN_OPTIONS}. How faces are cropped is not a detector option: callers ask for crops with
 * the embedder's crop policy (`detectFaces(images, { crop: embedder.preprocessing.crop })`).
 */
export interface MtcnnOptions {
  /** Smallest face to look for, in pixels. Default 20. */
  minFaceSize?: number;
  /** Score thresholds of P-Net, R-Net and O-Net. Default [0.6, 0.7, 0.7]. */
  thresholds?: [number, number, number];
  /** Scale step of the image pyramid. Default 0.709. */
  factor?: number;
  /**
   * facenet-pytorch's `select_largest`: when `keepAll` is false, pick the largest face (true) or the most
   * probable one (false). Ignored when `selectionMethod` is given. Default true.
   */
  selectLargest?: boolean;
  /** Which face to keep when `keepAll` is false. Default: from `selectLargest`. */
  selectionMethod?: SelectionMethod;
  /**
   * Return every face (true) or only the selected one (false). Default **true** — unlike facenet-pytorch
   * (false) — because a detector in a pipeline must report every face in a frame.
   */
  keepAll?: boolean;
  /** Threshold for `largest_over_threshold`. Default 0.9 (facenet-pytorch's). */
  probabilityThreshold?: number;
  /**
   * Working size: a frame with more pixels is detected on a downscaled copy of at most this many (aspect
   * kept), and the boxes and landmarks are mapped back to the frame (crops are still cut from the full
   * frame). It bounds the memory and time of a very large frame: a 25-megapixel frame costs what a 4K one
   * does instead of ~1.5 GB more. The smallest face found in such a frame is `minFaceSize` or
   * `12 / scale` pixels, whichever is larger. Default 8,294,400 (3840×2160): every frame up to 4K, and every
   * parity reference, is detected at full size as facenet-pytorch does; 0 turns the working size off.
   */
  maxPixels?: number;
}

/** Fully resolved MTCNN options. */
export type ResolvedMtcnnOptions = Required<Omit<MtcnnOptions, 'selectionMethod'>> & {
  selectionMethod: SelectionMethod;
};

/** facenet-pytorch's defaults, except `keepAll` (see {@link MtcnnOptions.keepAll}). */
export const DEFAULT_MTCNN_OPTIONS: Readonly<Omit<ResolvedMtcnnOptions, 'selectionMethod'>> = Object.freeze({
  minFaceSize: 20,
  thresholds: [0.6, 0.7, 0.7] as [number, number, number],
  factor: 0.709,
  selectLargest: true,
  keepAll: true,
  probabilityThreshold: 0.9,
  maxPixels: 3840 * 2160,
});

/**
 * The `minFaceSize` the pipeline's settings take (`FACEREC_MIN_FACE_SIZE`, the CLI's `--min-face-size`): whole
 * pixels from 12, P-Net's window, to 4096. The option itself takes any size from 12.
 */
export const MIN_FACE_SIZE_SETTING: Readonly<{ min: number; max: number }> = Object.freeze({
  min: 12,
  max: 4096,
});

const probability = z.number().gt(0).lt(1);

/** The strict schema of {@link MtcnnOptions} (the model registry's option schema for `mtcnn`). */
export const mtcnnOptionsSchema: z.ZodType<MtcnnOptions> = z
  .object({
    minFaceSize: z.number().min(12),
    thresholds: z.tuple([probability, probability, probability]),
    factor: z.number().gt(0.1).lt(0.95),
    selectLargest: z.boolean(),
    selectionMethod: z.enum(['probability', 'largest', 'largest_over_threshold', 'center_weighted_size']),
    keepAll: z.boolean(),
    probabilityThreshold: probability,
    maxPixels: z.union([z.literal(0), z.number().int().min(144)]),
  })
  .partial()
  .strict();

/**
 * Merges `options` over the defaults and validates them once; unknown keys and out-of-range values throw
 * `InvalidOptionsError` naming the key.
 */
export function resolveMtcnnOptions(options: MtcnnOptions = {}, component = 'mtcnn'): ResolvedMtcnnOptions {
  const parsed = parseOptions(mtcnnOptionsSchema, options, component);
  const merged = { ...DEFAULT_MTCNN_OPTIONS, ...parsed };
  return {
    ...merged,
    thresholds: [...merged.thresholds] as [number, number, number],
    selectionMethod: parsed.selectionMethod ?? (merged.selectLargest ? 'largest' : 'probability'),
  };
}
