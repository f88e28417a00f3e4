import { z } from 'zod';

/**
 * The decoder's limits, apart from the decoder (no sharp here): the Lambda configuration and the CDK construct
 * read them through the registry subpath.
 */

/** Limits `decodeImage` enforces before decoding; omitted keys take {@link DEFAULT_DECODE_LIMITS}. */
export interface DecodeLimits {
  /** Largest accepted input, in bytes of the encoded file. Positive integer. */
  readonly maxBytes?: number;
  /** Largest accepted `width * height`, read from the header before any pixel is decoded. Positive integer. */
  readonly maxPixels?: number;
}

/**
 * Default {@link DecodeLimits}: 10 MiB of encoded bytes and 25 megapixels (25,000,000 pixels), enough for
 * phone photos while bounding the memory one request can make the decoder allocate (25 MP of RGB is 75 MB).
 */
export const DEFAULT_DECODE_LIMITS: Readonly<Required<DecodeLimits>> = Object.freeze({
  maxBytes: 10 * 1024 * 1024,
  maxPixels: 25_000_000,
});

/**
 * The largest {@link DecodeLimits} facerec's configuration accepts (the Lambda functions'
 * `FACEREC_MAX_IMAGE_BYTES` / `FACEREC_MAX_IMAGE_PIXELS`, the CLI's `--max-image-bytes` / `--max-image-pixels`):
 * 64 MiB and 100 megapixels, which keeps one image's decode and detection near 1 GiB of memory (100 MP of RGB
 * is 300 MB, before the detector's working copies; `facerec detect` peaked at 1.06 GiB on one). A larger
 * limit would trade a clear refusal for running out of memory. `decodeImage` itself takes any positive limits.
 */
export const MAX_DECODE_LIMITS: Readonly<Required<DecodeLimits>> = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxPixels: 100_000_000,
});

/** {@link DecodeLimits} as options take them: each a positive integer, no other key. */
export const decodeLimitsSchema = z
  .strictObject({
    maxBytes: z.number().int().positive().optional(),
    maxPixels: z.number().int().positive().optional(),
  })
  .optional();
