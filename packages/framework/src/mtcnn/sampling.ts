import { areaWindowEnd, areaWindowStart } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import {
  f32x4Bytes,
  functionBody,
  I32,
  i32x4Bytes,
  lazyModule,
  moduleBytes,
  op,
  V128,
  WASM_PAGE,
  type WasmMemory,
  wasmApi,
} from '../wasm/assembler.js';
import { buildSummedAreaTable, SampleBounds, sampleSummedAreaTable, summedAreaTableLength } from './area.js';

/**
 * Area resampling of the frames of one cascade run (see `area.ts`), with two implementations of the same
 * arithmetic:
 * - `wasm`: WebAssembly SIMD, one 4-lane vector per output position holding its three channels. About three
 *   times faster than JavaScript, which cannot vectorise; the cascade resamples millions of values per frame.
 * - `js`: the portable fallback.
 *
 * Both give bit-identical results (tests compare each with the window-by-window definition). The SIMD code
 * divides in float32 directly — exactly PyTorch's `sum / kh / kw` — which needs the window sum to be exact
 * in float32 (below 2^24): windows larger than that (never seen with MTCNN's pyramid and crops: a crop of a
 * 6,000-pixel face is still below) are resampled by the JavaScript code.
 */
export type SamplingKind = 'wasm' | 'js';

/** Frames up to this many pixels (1920×1080) are resampled in memory kept for the next run. */
export const RETAINED_FRAME_PIXELS = 1920 * 1080;

/** The frames of one run, ready to be resampled into one output buffer. */
export interface FrameSampler {
  readonly kind: SamplingKind;
  /**
   * A float32 buffer of `length` values that the next {@link FrameSampler.sample} calls write into (contents
   * unspecified). It stays valid until the next `output` call on any sampler of the same {@link FrameSampling}.
   */
  output(length: number): Float32Array;
  /**
   * Resamples the rectangle at (`x0`, `y0`) of `w`×`h` pixels of frame `index` to `outH`×`outW` and writes
   * it as CHW float32 standardised as `(v − 127.5) · 0.0078125` into the current output from `at`.
   */
  sample(
    index: number,
    x0: number,
    y0: number,
    w: number,
    h: number,
    outH: number,
    outW: number,
    at: number,
  ): void;
}

/**
 * Reusable resampling memory for one detector. Allocating fresh multi-megabyte arrays per frame is the
 * slowest thing the cascade could do in a Firecracker microVM (Lambda, and this project's CI machines):
 * first-touching 22 MB costs ~80 ms there, more than the arithmetic done in it. So buffers grow to the
 * largest frames seen and are then reused — up to a Full HD frame ({@link RETAINED_FRAME_PIXELS}). A larger
 * frame gets one-off JavaScript buffers that are garbage-collected after its run: WebAssembly memory never
 * shrinks, and one 4K frame would otherwise keep ~100 MB for the life of the process (the two
 * implementations give the same results). Runs must not overlap (the detector serialises its calls).
 */
export class FrameSampling {
  readonly kind: SamplingKind;
  readonly #wasm: WasmSampling | undefined;
  readonly #js = new JsSampling();

  /** `'auto'` uses WebAssembly SIMD when the runtime has it. */
  constructor(kind: SamplingKind | 'auto' = 'auto') {
    this.#wasm = kind === 'js' ? undefined : WasmSampling.create();
    if (kind === 'wasm' && !this.#wasm) throw new Error('WebAssembly SIMD is not available in this runtime');
    this.kind = this.#wasm ? 'wasm' : 'js';
  }

  /** Builds the frames' summed-area tables; returns the sampler for this run. */
  load(frames: readonly RgbImage[]): FrameSampler {
    if (frames.some((f) => f.width * f.height > RETAINED_FRAME_PIXELS)) return new JsSampling().load(frames);
    if (this.#wasm) {
      try {
        return this.#wasm.load(frames);
      } catch (error) {
        // Frames too large for 4 GiB of WebAssembly memory: this run uses JavaScript arrays instead.
        if (!(error instanceof RangeError)) throw error;
      }
    }
    return this.#js.load(frames);
  }
}

class JsSampling {
  #tables: Uint32Array[] = [];
  #output = new Float32Array(0);
  readonly #bounds = new SampleBounds();

  load(frames: readonly RgbImage[]): FrameSampler {
    frames.forEach((frame, i) => {
      const length = summedAreaTableLength(frame.width, frame.height);
      if ((this.#tables[i]?.length ?? -1) < length)
        this.#tables[i] = new Uint32Array(Math.ceil(length * 1.25));
      buildSummedAreaTable(frame, this.#tables[i]!, 0);
    });
    return {
      kind: 'js',
      output: (length) => {
        if (this.#output.length < length) this.#output = new Float32Array(Math.ceil(length * 1.25));
        return this.#output.subarray(0, length);
      },
      sample: (index, x0, y0, w, h, outH, outW, at) => {
        sampleSummedAreaTable(
          this.#tables[index]!,
          0,
          frames[index]!.width,
          { x0, y0, w, h },
          outH,
          outW,
          this.#output,
          at,
          this.#bounds,
        );
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// WebAssembly SIMD
// ---------------------------------------------------------------------------------------------------------

/** Row and column bounds entries: 16 bytes each (two byte offsets and the window size as float32). */
const BOUND_BYTES = 16;
/** Room for this many row + column entries at the start of memory; larger outputs use the JS code. */
const BOUND_ENTRIES = 8192;
/** Largest window sum the float32 arithmetic handles exactly. */
const EXACT_SUM = 2 ** 24;

/**
 * `build(src, width, height, table)`: the summed-area table of the RGB bytes at `src` (with 8 readable bytes
 * after the last pixel), written from `table + stride` (the zero first row is the caller's), plus 4 bytes
 * written after the table. Each position is a 4-lane vector: R, G, B and one lane of junk that the next
 * position's store overwrites.
 */
function buildBody(): number[] {
  const [SRC, WIDTH, HEIGHT, TABLE, STRIDE, HERE, ABOVE, H, A, END, RUN] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const code = [
    // stride = (width + 1) * 12
    ...op.get(WIDTH),
    ...op.i32Const(1),
    ...op.i32Add,
    ...op.i32Const(12),
    ...op.i32Mul,
    ...op.set(STRIDE),
    ...op.get(TABLE),
    ...op.set(ABOVE),
    ...op.get(TABLE),
    ...op.get(STRIDE),
    ...op.i32Add,
    ...op.set(HERE),
    ...op.loop,
    // The zero first column (the fourth lane lands on the first pixel, written next).
    ...op.get(HERE),
    ...op.v128Zero,
    ...op.v128StoreUnaligned(0),
    ...op.v128Zero,
    ...op.set(RUN),
    ...op.get(HERE),
    ...op.i32Const(12),
    ...op.i32Add,
    ...op.set(H),
    ...op.get(ABOVE),
    ...op.i32Const(12),
    ...op.i32Add,
    ...op.set(A),
    ...op.get(HERE),
    ...op.get(STRIDE),
    ...op.i32Add,
    ...op.set(END),
    ...op.loop,
    // run += [R, G, B, 0] of the pixel at src
    ...op.get(RUN),
    ...op.get(SRC),
    ...op.v128Load8x8U(0),
    ...op.i32x4ExtendLowI16x8U,
    ...op.v128Const(i32x4Bytes([-1, -1, -1, 0])),
    ...op.v128And,
    ...op.i32x4Add,
    ...op.set(RUN),
    // table[h] = run + table[a]
    ...op.get(H),
    ...op.get(RUN),
    ...op.get(A),
    ...op.v128LoadUnaligned(0),
    ...op.i32x4Add,
    ...op.v128StoreUnaligned(0),
    ...op.get(SRC),
    ...op.i32Const(3),
    ...op.i32Add,
    ...op.set(SRC),
    ...op.get(A),
    ...op.i32Const(12),
    ...op.i32Add,
    ...op.set(A),
    ...op.get(H),
    ...op.i32Const(12),
    ...op.i32Add,
    ...op.tee(H),
    ...op.get(END),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
    ...op.get(HERE),
    ...op.set(ABOVE),
    ...op.get(END),
    ...op.set(HERE),
    ...op.get(HEIGHT),
    ...op.i32Const(1),
    ...op.i32Sub,
    ...op.tee(HEIGHT),
    ...op.brIf(0),
    ...op.end,
  ];
  return functionBody(
    [
      [6, I32],
      [1, V128],
    ],
    code,
  );
}

/**
 * `sample(rows, rowsEnd, cols, colsEnd, out, plane)`: for each row entry (top and bottom row addresses, window
 * height) and each column entry (left and right byte offsets in a row, window width), stores
 * `(sum / kh / kw − 127.5) · 0.0078125` per channel at `out`, `out + plane`, `out + 2·plane`, advancing by 4.
 */
function sampleBody(): number[] {
  const [ROWS, ROWS_END, COLS, COLS_END, OUT, PLANE] = [0, 1, 2, 3, 4, 5];
  const [TOP, BOTTOM, C, A, B, OUT_G, OUT_B, KH, F] = [6, 7, 8, 9, 10, 11, 12, 13, 14];
  const corner = (row: number, col: number) => [
    ...op.get(row),
    ...op.get(col),
    ...op.i32Add,
    ...op.v128LoadUnaligned(0),
  ];
  const advance = (local: number, by: number) => [
    ...op.get(local),
    ...op.i32Const(by),
    ...op.i32Add,
    ...op.set(local),
  ];
  const code = [
    ...op.get(OUT),
    ...op.get(PLANE),
    ...op.i32Add,
    ...op.tee(OUT_G),
    ...op.get(PLANE),
    ...op.i32Add,
    ...op.set(OUT_B),
    ...op.loop,
    ...op.get(ROWS),
    ...op.i32Load(0),
    ...op.set(TOP),
    ...op.get(ROWS),
    ...op.i32Load(4),
    ...op.set(BOTTOM),
    ...op.get(ROWS),
    ...op.v128Load32Splat(8),
    ...op.set(KH),
    ...op.get(COLS),
    ...op.set(C),
    ...op.loop,
    ...op.get(C),
    ...op.i32Load(0),
    ...op.set(A),
    ...op.get(C),
    ...op.i32Load(4),
    ...op.set(B),
    // (bottom+b − top+b − bottom+a + top+a), modulo 2^32 per lane
    ...corner(BOTTOM, B),
    ...corner(TOP, B),
    ...op.i32x4Sub,
    ...corner(BOTTOM, A),
    ...op.i32x4Sub,
    ...corner(TOP, A),
    ...op.i32x4Add,
    ...op.f32x4ConvertI32x4U,
    ...op.get(KH),
    ...op.f32x4Div,
    ...op.get(C),
    ...op.v128Load32Splat(8),
    ...op.f32x4Div,
    ...op.v128Const(f32x4Bytes([127.5, 127.5, 127.5, 127.5])),
    ...op.f32x4Sub,
    ...op.v128Const(f32x4Bytes([0.0078125, 0.0078125, 0.0078125, 0.0078125])),
    ...op.f32x4Mul,
    ...op.set(F),
    ...op.get(OUT),
    ...op.get(F),
    ...op.v128Store32Lane(0, 0),
    ...op.get(OUT_G),
    ...op.get(F),
    ...op.v128Store32Lane(0, 1),
    ...op.get(OUT_B),
    ...op.get(F),
    ...op.v128Store32Lane(0, 2),
    ...advance(OUT, 4),
    ...advance(OUT_G, 4),
    ...advance(OUT_B, 4),
    ...op.get(C),
    ...op.i32Const(BOUND_BYTES),
    ...op.i32Add,
    ...op.tee(C),
    ...op.get(COLS_END),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
    ...op.get(ROWS),
    ...op.i32Const(BOUND_BYTES),
    ...op.i32Add,
    ...op.tee(ROWS),
    ...op.get(ROWS_END),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
  ];
  return functionBody(
    [
      [7, I32],
      [2, V128],
    ],
    code,
  );
}

const samplingModule = lazyModule(() =>
  moduleBytes([
    { name: 'build', params: 4, body: buildBody() },
    { name: 'sample', params: 6, body: sampleBody() },
  ]),
);

type BuildFn = (src: number, width: number, height: number, table: number) => void;
type SampleFn = (
  rows: number,
  rowsEnd: number,
  cols: number,
  colsEnd: number,
  out: number,
  plane: number,
) => void;

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * Memory layout: the bounds entries, then a staging area for one frame's pixels, then each frame's table,
 * then the output buffer, which grows at the end.
 */
class WasmSampling {
  readonly #memory: WasmMemory;
  readonly #build: BuildFn;
  readonly #sample: SampleFn;
  readonly #bounds = new SampleBounds();
  #u8 = new Uint8Array(0);
  #u32 = new Uint32Array(0);
  #i32 = new Int32Array(0);
  #f32 = new Float32Array(0);
  #output = 0;

  static create(): WasmSampling | undefined {
    const module = samplingModule();
    if (!module || !wasmApi) return undefined;
    try {
      const memory = new wasmApi.Memory({ initial: 1 });
      const instance = new wasmApi.Instance(module, { e: { m: memory } });
      return new WasmSampling(memory, instance.exports.build as BuildFn, instance.exports.sample as SampleFn);
    } catch {
      return undefined;
    }
  }

  private constructor(memory: WasmMemory, build: BuildFn, sample: SampleFn) {
    this.#memory = memory;
    this.#build = build;
    this.#sample = sample;
    this.#views();
  }

  #views(): void {
    const { buffer } = this.#memory;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#i32 = new Int32Array(buffer);
    this.#f32 = new Float32Array(buffer);
  }

  #reserve(bytes: number): void {
    const have = this.#memory.buffer.byteLength;
    if (bytes <= have) return;
    // Grow by 25 % beyond the request so slowly growing sizes do not reallocate every call; at the 4 GiB
    // limit of 32-bit WebAssembly, grow to exactly the request (or throw a RangeError).
    try {
      this.#memory.grow(Math.ceil((bytes * 1.25 - have) / WASM_PAGE));
    } catch {
      this.#memory.grow(Math.ceil((bytes - have) / WASM_PAGE));
    }
    this.#views();
  }

  load(frames: readonly RgbImage[]): FrameSampler {
    const staging = BOUND_ENTRIES * BOUND_BYTES;
    const tables: number[] = [];
    let end = staging + align16(Math.max(...frames.map((f) => f.data.length)) + 16);
    for (const f of frames) {
      tables.push(end);
      end += align16(summedAreaTableLength(f.width, f.height) * 4 + 16);
    }
    this.#output = end;
    this.#reserve(end);
    frames.forEach((f, i) => {
      this.#u8.set(f.data, staging);
      const table = tables[i]!;
      this.#u32.fill(0, table / 4, table / 4 + (f.width + 1) * 3);
      this.#build(staging, f.width, f.height, table);
    });
    return {
      kind: 'wasm',
      output: (length) => {
        this.#reserve(this.#output + length * 4);
        return this.#f32.subarray(this.#output / 4, this.#output / 4 + length);
      },
      sample: (index, x0, y0, w, h, outH, outW, at) => {
        const frame = frames[index]!;
        const table = tables[index]!;
        if (!this.#fillBounds(table, frame.width, { x0, y0, w, h }, outH, outW)) {
          sampleSummedAreaTable(
            this.#u32,
            table / 4,
            frame.width,
            { x0, y0, w, h },
            outH,
            outW,
            this.#f32,
            this.#output / 4 + at,
            this.#bounds,
          );
          return;
        }
        const cols = outH * BOUND_BYTES;
        this.#sample(0, cols, cols, cols + outW * BOUND_BYTES, this.#output + at * 4, outH * outW * 4);
      },
    };
  }

  /**
   * Writes the row entries (absolute addresses of the top and bottom table rows, window height) and then the
   * column entries (byte offsets within a row, window width) at address 0. Returns false when they do not
   * fit or a window is too large for exact float32 sums.
   */
  #fillBounds(
    table: number,
    width: number,
    rect: { x0: number; y0: number; w: number; h: number },
    outH: number,
    outW: number,
  ): boolean {
    if (outH + outW > BOUND_ENTRIES) return false;
    const { x0, y0, w, h } = rect;
    const i32 = this.#i32;
    const f32 = this.#f32;
    const stride = (width + 1) * 12;
    let tallest = 0;
    for (let i = 0; i < outH; i++) {
      const r0 = areaWindowStart(i, h, outH);
      const r1 = areaWindowEnd(i, h, outH);
      i32[i * 4] = table + (y0 + r0) * stride;
      i32[i * 4 + 1] = table + (y0 + r1) * stride;
      f32[i * 4 + 2] = r1 - r0;
      tallest = Math.max(tallest, r1 - r0);
    }
    let widest = 0;
    for (let j = 0, e = outH * 4; j < outW; j++, e += 4) {
      const c0 = areaWindowStart(j, w, outW);
      const c1 = areaWindowEnd(j, w, outW);
      i32[e] = (x0 + c0) * 12;
      i32[e + 1] = (x0 + c1) * 12;
      f32[e + 2] = c1 - c0;
      widest = Math.max(widest, c1 - c0);
    }
    return 255 * tallest * widest < EXACT_SUM;
  }
}
