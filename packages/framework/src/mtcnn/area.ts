/**
 * Area interpolation (PyTorch `F.interpolate(mode="area")`, i.e. `adaptive_avg_pool2d`) of any rectangle of
 * an RGB image, through per-channel summed-area tables.
 *
 * Written by hand rather than with `resizeArea` because MTCNN resamples the same frame once per pyramid
 * level and once per candidate box (thousands per frame): with summed-area tables each output sample costs
 * four lookups instead of a pass over its whole window. The pixels are integers and the tables are uint32
 * kept modulo 2^32: a window sum is below 2^32 for any image, so the modular difference of four entries is
 * exact. Each output is then `sum / kh / kw` rounded to float32 at each step, the order PyTorch's CPU
 * kernel divides in.
 */
export class AreaSampler {
  readonly width: number;
  readonly height: number;
  /** (height+1)×(width+1) running sums per channel, row-major, with a zero first row and column. */
  readonly #tables: [Uint32Array, Uint32Array, Uint32Array];

  /** `tables` provides reusable storage: three arrays of at least (width+1)·(height+1) elements. */
  constructor(
    image: { width: number; height: number; data: Uint8Array },
    tables?: (length: number, channel: number) => Uint32Array,
  ) {
    const { width, height, data } = image;
    this.width = width;
    this.height = height;
    const stride = width + 1;
    const length = stride * (height + 1);
    const table = (c: number) => (tables ? tables(length, c) : new Uint32Array(length));
    this.#tables = [table(0), table(1), table(2)];
    for (let c = 0; c < 3; c++) {
      const t = this.#tables[c]!;
      t.fill(0, 0, stride);
      for (let y = 0; y < height; y++) {
        let rowSum = 0;
        const src = y * width * 3 + c;
        const above = y * stride;
        const here = (y + 1) * stride;
        t[here] = 0;
        for (let x = 0; x < width; x++) {
          rowSum += data[src + x * 3]!;
          t[here + x + 1] = t[above + x + 1]! + rowSum;
        }
      }
    }
  }

  /**
   * Resamples the rectangle at (`x0`, `y0`) of `w`×`h` pixels to `outH`×`outW`, writes it as CHW float32
   * standardised as `(v − 127.5) · 0.0078125` into `out` from `at`.
   */
  sample(
    x0: number,
    y0: number,
    w: number,
    h: number,
    outH: number,
    outW: number,
    out: Float32Array,
    at: number,
  ): void {
    const stride = this.width + 1;
    const rowStart = new Int32Array(outH);
    const rowEnd = new Int32Array(outH);
    const colStart = new Int32Array(outW);
    const colEnd = new Int32Array(outW);
    for (let i = 0; i < outH; i++) {
      rowStart[i] = Math.floor((i * h) / outH);
      rowEnd[i] = Math.floor(((i + 1) * h + outH - 1) / outH);
    }
    // Multiplying by an exact-enough reciprocal rounds to the same float32 as dividing: an integer over a
    // small integer is never within a double's rounding error of a float32 rounding boundary.
    const colInverse = new Float64Array(outW);
    for (let j = 0; j < outW; j++) {
      colStart[j] = Math.floor((j * w) / outW);
      colEnd[j] = Math.floor(((j + 1) * w + outW - 1) / outW);
      colInverse[j] = 1 / (colEnd[j]! - colStart[j]!);
    }
    const f32 = Math.fround;
    for (let c = 0; c < 3; c++) {
      const t = this.#tables[c]!;
      const plane = at + c * outH * outW;
      for (let i = 0; i < outH; i++) {
        const top = (y0 + rowStart[i]!) * stride + x0;
        const bottom = (y0 + rowEnd[i]!) * stride + x0;
        const rowInverse = 1 / (rowEnd[i]! - rowStart[i]!);
        const o = plane + i * outW;
        for (let j = 0; j < outW; j++) {
          const a = colStart[j]!;
          const b = colEnd[j]!;
          const sum = (t[bottom + b]! - t[top + b]! - t[bottom + a]! + t[top + a]!) >>> 0;
          out[o + j] = (f32(f32(sum * rowInverse) * colInverse[j]!) - 127.5) * 0.0078125;
        }
      }
    }
  }
}
