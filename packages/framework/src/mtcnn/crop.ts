import { z } from 'zod';
import type { CropPolicy } from '../contracts/embedder.js';
import { parseOptions } from '../options.js';

const size = z.number().int().min(8).max(1024);

/** A crop policy as callers may pass it: square crops of 8–1024 px, a margin smaller than the crop. */
const cropPolicySchema = z
  .strictObject({
    size: z.strictObject({ width: size, height: size }),
    shape: z.enum(['box', 'square']),
    margin: z.number().min(0),
  })
  .refine((c) => c.size.width === c.size.height, 'MTCNN crops are square: size.width must equal size.height')
  .refine((c) => c.margin < c.size.width, 'margin must be smaller than the crop size');

/** Validates a caller's crop policy (`detectFaces(images, { crop })`); names every bad key. */
export function parseCropPolicy(crop: CropPolicy): CropPolicy {
  return parseOptions(cropPolicySchema, crop, 'detectFaces crop');
}
