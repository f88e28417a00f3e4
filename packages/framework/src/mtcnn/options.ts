import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';

/** How a single face is chosen when `keepAll` is false (facenet-pytorch's `selection_method`). */
export type SelectionMethod = 'probability' | 'largest' | 'largest_over_threshold' | 'center_weighted_size';

/**
 * MTCNN options, named as facenet-pytorch names them (camel-cased). All optional; see
 * {@link DEFAULT_MTCNN_OPTIONS}.
 */
export interface MtcnnOptions {
  /** Side of the square face crops, in pixels. Default 160. */
  imageSize?: number;
  /** Margin added around the box before cropping, in pixels of the final crop. Default 0. */
  margin?: number;
  /** Smallest face to look for, in pixels. Default 20. */
  minFaceSize?: number;
  /** Score thresholds of P-Net, R-Net and O-Net. Default [0.6, 0.7, 0.7]. */
  thresholds?: [number, number, number];
  /** Scale step of the image pyramid. Default 0.709. */
  factor?: number;
  /** Standardise crops as `(x − 127.5) / 128` in {@link FaceCrop.tensor}. Default true. */
  postProcess?: boolean;
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
   * Shape of the region cut out for each crop: `box` (facenet-pytorch's `extract_face`: the box itself,
   * stretched to a square crop) or `square` (the smallest square around the box's centre that holds it, so
   * the face keeps its aspect ratio — better for embedders not trained on stretched faces, such as
   * face-api.js's). Default `box`.
   */
  cropShape?: 'box' | 'square';
}

/** Fully resolved MTCNN options. */
export type ResolvedMtcnnOptions = Required<Omit<MtcnnOptions, 'selectionMethod'>> & {
  selectionMethod: SelectionMethod;
};

/** facenet-pytorch's defaults, except `keepAll` (see {@link MtcnnOptions.keepAll}). */
export const DEFAULT_MTCNN_OPTIONS: Readonly<Omit<ResolvedMtcnnOptions, 'selectionMethod'>> = Object.freeze({
  imageSize: 160,
  margin: 0,
  minFaceSize: 20,
  thresholds: [0.6, 0.7, 0.7] as [number, number, number],
  factor: 0.709,
  postProcess: true,
  selectLargest: true,
  keepAll: true,
  probabilityThreshold: 0.9,
  cropShape: 'box',
});

const probability = z.number().gt(0).lt(1);
const schema = z
  .object({
    imageSize: z.number().int().min(8).max(1024),
    margin: z.number().min(0),
    minFaceSize: z.number().min(12),
    thresholds: z.tuple([probability, probability, probability]),
    factor: z.number().gt(0.1).lt(0.95),
    postProcess: z.boolean(),
    selectLargest: z.boolean(),
    selectionMethod: z.enum(['probability', 'largest', 'largest_over_threshold', 'center_weighted_size']),
    keepAll: z.boolean(),
    probabilityThreshold: probability,
    cropShape: z.enum(['box', 'square']),
  })
  .partial()
  .strict();

/**
 * Merges `options` over the defaults and validates them once; unknown keys and out-of-range values throw
 * `InvalidOptionsError` naming the key.
 */
export function resolveMtcnnOptions(options: MtcnnOptions = {}, component = 'mtcnn'): ResolvedMtcnnOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw new InvalidOptionsError(component, issues, { cause: parsed.error });
  }
  const merged = { ...DEFAULT_MTCNN_OPTIONS, ...parsed.data };
  if (merged.margin >= merged.imageSize) {
    throw new InvalidOptionsError(component, `margin (${merged.margin}) must be smaller than imageSize`);
  }
  return {
    ...merged,
    thresholds: [...merged.thresholds] as [number, number, number],
    selectionMethod: parsed.data.selectionMethod ?? (merged.selectLargest ? 'largest' : 'probability'),
  };
}
