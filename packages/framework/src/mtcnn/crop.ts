import { z } from 'zod';
import type { CropPolicy, CropShape } from '../contracts/embedder.js';
import { parseOptions } from '../options.js';

const size = z.number().int().min(8).max(1024);

/** Every {@link CropShape}, as the schemas that read crop policies (options, gallery headers) accept them. */
export const CROP_SHAPES = Object.freeze(['box', 'square', 'eyes-mouth', 'aligned'] as const);
// Fails to compile when CropShape gains a member this list lacks.
const everyShape: Record<CropShape, true> = { box: true, square: true, 'eyes-mouth': true, aligned: true };
void everyShape;

/** A crop shape as a schema: one of {@link CROP_SHAPES}. */
export const cropShapeSchema = z.enum(CROP_SHAPES);

/**
 * A crop policy as it is recorded (gallery headers, face messages on the request queue): its fields, without
 * the limits MTCNN sets on the crops it cuts.
 */
export const recordedCropPolicySchema = z.strictObject({
  size: z.strictObject({ width: z.number().int().positive(), height: z.number().int().positive() }),
  shape: cropShapeSchema,
  margin: z.number().min(0),
});

/** Whether two crop policies cut the same crop: the same shape, size and margin. */
export function sameCropPolicy(a: CropPolicy, b: CropPolicy): boolean {
  return (
    a.shape === b.shape &&
    a.margin === b.margin &&
    a.size.width === b.size.width &&
    a.size.height === b.size.height
  );
}

/** A crop policy in words, for messages: `eyes-mouth 150×150, margin 0`. */
export function describeCropPolicy(crop: CropPolicy): string {
  return `${crop.shape} ${crop.size.width}×${crop.size.height}, margin ${crop.margin}`;
}

/**
 * A crop policy {@link extractFace} can cut: a known shape, a whole-pixel size, a margin from 0 to less than the
 * crop's width. Said as `InvalidOptionsError` naming `component` and every bad key.
 */
export function parseCuttableCropPolicy(crop: CropPolicy, component: string): CropPolicy {
  return parseOptions(cuttableCropPolicySchema, crop, component);
}
const cuttableCropPolicySchema = recordedCropPolicySchema.refine(
  (c) => c.margin < c.size.width,
  'margin must be smaller than the crop size',
);

/** A crop policy as callers may pass it: square crops of 8–1024 px, a margin smaller than the crop. */
const cropPolicySchema = z
  .strictObject({
    size: z.strictObject({ width: size, height: size }),
    shape: cropShapeSchema,
    margin: z.number().min(0),
  })
  .refine((c) => c.size.width === c.size.height, 'MTCNN crops are square: size.width must equal size.height')
  .refine((c) => c.margin < c.size.width, 'margin must be smaller than the crop size');

/** Validates a caller's crop policy (`detectFaces(images, { crop })`); names every bad key. */
export function parseCropPolicy(crop: CropPolicy): CropPolicy {
  return parseOptions(cropPolicySchema, crop, 'detectFaces crop');
}

/** `detectFaces`' options: only `crop` (a misspelt key would otherwise mean no crops, silently). */
const detectFacesOptionsSchema = z.strictObject({ crop: cropPolicySchema.optional() });

/**
 * Validates `detectFaces`' options (`InvalidOptionsError` naming every bad key), as a detector of your own
 * should before cutting crops (`describeDetectorConformance` checks it). Returns the crop policy, if any.
 *
 * @example
 * async detectFaces(images, options) {
 *   const crop = parseDetectFacesOptions(options);
 *   return images.map((image) => { const faces = find(image);
 *     return { faces, crops: crop ? faces.map((f) => extractFace(image, f, crop)) : [] }; });
 * }
 */
export function parseDetectFacesOptions(options: unknown): CropPolicy | undefined {
  return parseOptions(detectFacesOptionsSchema, options ?? {}, 'detectFaces').crop;
}
