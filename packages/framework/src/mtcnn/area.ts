import { areaWindowEnd, areaWindowStart } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';

/**
 * Area interpolation (PyTorch `F.interpolate(mode="area")`, i.e. `adaptive_avg_pool2d`) of any rectangle of
 * an RGB image, through a summed-area table.
 *
 * Written by hand rather than with `resizeArea` because MTCNN resamples the same frame once per pyramid
 * level and once per candidate box (thousands per frame): with summed-area tables each output sample costs
 * four lookups instead of a pass over its whole window. The pixels are integers and the table is uint32
 * kept modulo 2^32: a window sum is below 2^32 for any image, so the modular difference of four entries is
 * exact. Each output is then `sum / kh / kw` rounded to float32 at each step, the order PyTorch's CPU
 * kernel divides in.
 *
 * The table keeps the three channels of a position side by side (like the image), so the four corners of
 * a window cost four cache lines for all three channels rather than twelve: candidate crops land anywhere
 * in a table of tens of megabytes, and those misses were most of the cascade's JavaScript time.
 *
 * This is the portable implementation; `sampling.ts` runs the same arithmetic as WebAssembly SIMD where the
 * runtime has it.
 */

/** Elements of the summed-area table of a `width`×`height` image. */
export function summedAreaTableLength(width: number, height: number): number {
  return (width + 1) * (height + 1) * 3;
}

/**
 * Writes the summed-area table of `image` into `t` from element `base`: (height+1)×(width+1)×3 running
 * sums, row-major, RGB interleaved, with a zero first row and column.
 */
export function buildSummedAreaTable(image: RgbImage, t: Uint32Array, base: number): void {
  const { width, height, data } = image;
  const stride = (width + 1) * 3;
  t.fill(0, base, base + stride);
  for (let y = 0; y < height; y++) {
    let r = 0;
    let g = 0;
    let b = 0;
    let src = y * width * 3;
    let above = base + y * stride + 3;
    let here = above + stride;
    t[here - 3] = 0;
    t[here - 2] = 0;
    t[here - 1] = 0;
    for (let x = 0; x < width; x++, src += 3, above += 3, here += 3) {
      r += data[src]!;
      g += data[src + 1]!;
      b += data[src + 2]!;
      t[here] = t[above]! + r;
      t[here + 1] = t[above + 1]! + g;
      t[here + 2] = t[above + 2]! + b;
    }
  }
}

/** Reusable per-call buffers of {@link sampleSummedAreaTable}. */
export class SampleBounds {
  cols = new Int32Array(0);
  inverse = new Float64Array(0);

  reserve(outW: number): void {
    if (this.cols.length < 2 * outW) {
      this.cols = new Int32Array(2 * outW);
      this.inverse = new Float64Array(outW);
    }
  }
}

/**
 * Resamples the rectangle at (`x0`, `y0`) of `w`×`h` pixels of the image whose table starts at element `base`
 * of `t` (image width `width`) to `outH`×`outW`, and writes it as CHW float32 standardised as
 * `(v − 127.5) · 0.0078125` into `out` from `at`.
 */
export function sampleSummedAreaTable(
  t: Uint32Array,
  base: number,
  width: number,
  rect: { x0: number; y0: number; w: number; h: number },
  outH: number,
  outW: number,
  out: Float32Array,
  at: number,
  bounds: SampleBounds,
): void {
  const { x0, y0, w, h } = rect;
  const stride = (width + 1) * 3;
  bounds.reserve(outW);
  // Column window j spans [colStart, colEnd): stored as table offsets (×3) relative to a row.
  const cols = bounds.cols;
  const colInverse = bounds.inverse;
  // Multiplying by an exact-enough reciprocal rounds to the same float32 as dividing: an integer over a
  // small integer is never within a double's rounding error of a float32 rounding boundary.
  for (let j = 0; j < outW; j++) {
    const a = areaWindowStart(j, w, outW);
    const b = areaWindowEnd(j, w, outW);
    cols[2 * j] = (x0 + a) * 3;
    cols[2 * j + 1] = (x0 + b) * 3;
    colInverse[j] = 1 / (b - a);
  }
  const f32 = Math.fround;
  const plane = outH * outW;
  for (let i = 0; i < outH; i++) {
    const r0 = areaWindowStart(i, h, outH);
    const r1 = areaWindowEnd(i, h, outH);
    const top = base + (y0 + r0) * stride;
    const bottom = base + (y0 + r1) * stride;
    const rowInverse = 1 / (r1 - r0);
    let o = at + i * outW;
    for (let j = 0; j < outW; j++, o++) {
      const a = cols[2 * j]!;
      const b = cols[2 * j + 1]!;
      const ci = colInverse[j]!;
      const tb = top + b;
      const bb = bottom + b;
      const ta = top + a;
      const ba = bottom + a;
      const sr = (t[bb]! - t[tb]! - t[ba]! + t[ta]!) >>> 0;
      const sg = (t[bb + 1]! - t[tb + 1]! - t[ba + 1]! + t[ta + 1]!) >>> 0;
      const sb = (t[bb + 2]! - t[tb + 2]! - t[ba + 2]! + t[ta + 2]!) >>> 0;
      out[o] = (f32(f32(sr * rowInverse) * ci) - 127.5) * 0.0078125;
      out[o + plane] = (f32(f32(sg * rowInverse) * ci) - 127.5) * 0.0078125;
      out[o + 2 * plane] = (f32(f32(sb * rowInverse) * ci) - 127.5) * 0.0078125;
    }
  }
}
