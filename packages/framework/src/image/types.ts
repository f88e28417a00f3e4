/**
 * A decoded 8-bit RGB image, packed row-major and channel-interleaved (HWC): the pixel at `(x, y)` starts at
 * `data[(y * width + x) * 3]`, followed by its green and blue samples.
 *
 * Invariant: `data.length === width * height * 3`, with `width` and `height` positive integers.
 */
export interface RgbImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `height * width * 3` samples, R, G, B per pixel, rows top to bottom. */
  readonly data: Uint8Array;
}
