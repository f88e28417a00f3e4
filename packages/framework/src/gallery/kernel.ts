/**
 * Exact dot-product search over one contiguous float32 matrix (rows = gallery examples or centroids).
 *
 * Two kernels compute the same thing:
 * - `wasm`: a small WebAssembly SIMD module (f32x4), generated below from a few lines of opcodes. Plain
 *   JavaScript cannot vectorise, and a scalar dot product streams a 10,000 × 512 matrix in about 4 ms; the
 *   SIMD kernel does it in well under the 2 ms/query budget. It needs no dependency and no native code.
 * - `js`: the scalar fallback, used where WebAssembly SIMD is missing or memory for the matrix cannot be had.
 *
 * The matrix lives inside the WebAssembly memory (copied there once, when the index is built) with rows
 * padded with zeros to a multiple of 8 floats, so any dimension works and every load is 16-byte aligned.
 * Up to 3 queries go through one pass over the matrix, which is what makes batches cheaper per query: the
 * matrix is read from memory once for all of them.
 *
 * Accuracy: the SIMD kernel accumulates in float32 over 8 partial sums; for unit vectors of 512 dimensions
 * the dot product is within about 1e-6 of a float64 sum. The JS kernel accumulates in float64.
 */

import {
  functionBody,
  I32,
  lazyModule,
  moduleBytes,
  op,
  V128,
  WASM_PAGE,
  type WasmMemory,
  wasmApi,
} from '../wasm/assembler.js';

/** Which implementation an index uses. */
export type DotKernelName = 'wasm' | 'js';

/** Largest number of queries one pass handles; larger batches are split. */
export const MAX_QUERIES_PER_PASS = 3;

/** Rows are padded to a multiple of this many floats (each step reads `UNROLL` × 4 floats of a row). */
const ROW_ALIGN = 8;
/** Rows scored per kernel call; keeps the output block small enough to stay in cache. */
const BLOCK_ROWS = 2048;
/** WebAssembly (32-bit) memory is at most 4 GiB. */
const MAX_PAGES = 65536;

/**
 * Body of `kernel(mat, rows, stride, q, out)`: for each of `rows` rows of `stride` bytes starting at `mat`,
 * stores the dot product with each of `queries` queries as float32 at `out[row * queries + k]`.
 *
 * Queries are interleaved by 4-float chunks: chunk `c` of query `k` sits at `q + 16 * (c * queries + k)`, so
 * every load has a static offset. `unroll` chunks are processed per step, each with its own accumulators,
 * to hide the latency of the additions when there are few queries.
 *
 * Locals: 0 mat, 1 rows, 2 stride, 3 q, 4 out (params); 5 end, 6 qp (i32); then queries × unroll
 * accumulators and one scratch vector (v128).
 */
function kernelBody(queries: number, unroll: number): number[] {
  const [MAT, ROWS, STRIDE, Q, OUT, END, QP] = [0, 1, 2, 3, 4, 5, 6];
  const acc = (k: number, u: number) => 7 + k * unroll + u;
  const X = 7 + queries * unroll;
  const code: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) code.push(...p);
  };
  emit(op.block, op.get(ROWS), op.i32Eqz, op.brIf(0), op.loop);
  for (let k = 0; k < queries; k++) for (let u = 0; u < unroll; u++) emit(op.v128Zero, op.set(acc(k, u)));
  emit(op.get(MAT), op.get(STRIDE), op.i32Add, op.set(END), op.get(Q), op.set(QP));
  emit(op.loop);
  for (let u = 0; u < unroll; u++) {
    emit(op.get(MAT), op.v128Load(16 * u), op.set(X));
    for (let k = 0; k < queries; k++) {
      emit(op.get(acc(k, u)), op.get(X), op.get(QP), op.v128Load(16 * (u * queries + k)));
      emit(op.f32x4Mul, op.f32x4Add, op.set(acc(k, u)));
    }
  }
  emit(op.get(MAT), op.i32Const(16 * unroll), op.i32Add, op.set(MAT));
  emit(op.get(QP), op.i32Const(16 * unroll * queries), op.i32Add, op.set(QP));
  emit(op.get(MAT), op.get(END), op.i32LtU, op.brIf(0), op.end);
  for (let k = 0; k < queries; k++) {
    emit(op.get(OUT), op.get(acc(k, 0)));
    for (let u = 1; u < unroll; u++) emit(op.get(acc(k, u)), op.f32x4Add);
    emit(op.set(X), op.get(X), op.f32x4ExtractLane(0), op.get(X), op.f32x4ExtractLane(1), op.f32Add);
    emit(op.get(X), op.f32x4ExtractLane(2), op.f32Add, op.get(X), op.f32x4ExtractLane(3), op.f32Add);
    emit(op.f32Store(4 * k));
  }
  emit(op.get(OUT), op.i32Const(4 * queries), op.i32Add, op.set(OUT));
  emit(op.get(ROWS), op.i32Const(1), op.i32Sub, op.tee(ROWS), op.brIf(0), op.end, op.end);
  return functionBody(
    [
      [2, I32],
      [queries * unroll + 1, V128],
    ],
    code,
  );
}

/**
 * Kernels by number of queries per pass. All use the same unroll, so every query's products are summed in
 * the same order whichever kernel runs it: a query gets bit-identical distances alone or in any batch. Two
 * accumulators per query hide most of the addition latency for a single query. Measured on x86-64 (10,000 ×
 * 512, ms per query): 1 query 0.58, 2 queries 0.41, 3 queries 0.33, 4 queries 0.84 — at four queries × two
 * accumulators the registers run out and V8 spills, so three is the widest kernel.
 */
const UNROLL = 2;
const KERNELS = [
  { queries: 1, unroll: UNROLL },
  { queries: 2, unroll: UNROLL },
  { queries: 3, unroll: UNROLL },
] as const;

const simdModule = lazyModule(() =>
  moduleBytes(
    KERNELS.map((k) => ({ name: `k${k.queries}`, params: 5, body: kernelBody(k.queries, k.unroll) })),
  ),
);

type KernelFn = (mat: number, rows: number, stride: number, q: number, out: number) => void;

/** Whether this runtime can use the WebAssembly SIMD kernel. */
export function wasmSimdAvailable(): boolean {
  return simdModule() !== null;
}

// ---------------------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------------------

/**
 * Receives the dot products of one block of rows with a pass's queries: `dots[(r - start) * stride + k]` is
 * row `r` with query `k`, for `start ≤ r < start + count` and `k` below the pass's query count.
 */
export type DotBlockVisitor = (start: number, count: number, dots: Float32Array, stride: number) => void;

/** An immutable matrix of `rows` float32 vectors of `dimension` values, scored against queries. */
export interface DotIndex {
  readonly kernel: DotKernelName;
  readonly rows: number;
  readonly dimension: number;
  /** Row `r`, as a view into the index (no copy): read it, never write it. */
  rowView(r: number): Float32Array;
  /** Copies rows `from` to `to − 1` into `into` from `offset`, back to back (`dimension` floats each). */
  copyRows(from: number, to: number, into: Float32Array, offset: number): void;
  /**
   * Scores `count` queries (≤ {@link MAX_QUERIES_PER_PASS}) stored back to back in `queries`
   * (`count × dimension` floats), calling `visit` for consecutive blocks of rows.
   */
  scan(queries: Float32Array, count: number, visit: DotBlockVisitor): void;
}

/**
 * Builds an index over `matrix` (`rows × dimension`, row-major). `kernel: 'auto'` picks WebAssembly SIMD when
 * the runtime has it and the matrix fits in 4 GiB of WebAssembly memory, else the JS kernel. The WebAssembly
 * index copies the matrix into its memory; the JS index keeps `matrix` itself, which the caller must then
 * leave unchanged.
 */
export function createDotIndex(
  matrix: Float32Array,
  rows: number,
  dimension: number,
  kernel: DotKernelName | 'auto' = 'auto',
): DotIndex {
  if (matrix.length !== rows * dimension) {
    throw new RangeError(`matrix has ${matrix.length} floats, expected ${rows} × ${dimension}`);
  }
  if (kernel !== 'js') {
    const index = WasmDotIndex.tryCreate(matrix, rows, dimension);
    if (index) return index;
    if (kernel === 'wasm') throw new Error('WebAssembly SIMD is not available in this runtime');
  }
  return new JsDotIndex(matrix, rows, dimension);
}

class WasmDotIndex implements DotIndex {
  readonly kernel = 'wasm';
  readonly rows: number;
  readonly dimension: number;
  readonly #stride: number;
  readonly #memory: Float32Array;
  readonly #queryOffset: number;
  readonly #outOffset: number;
  readonly #kernels: ReadonlyMap<number, KernelFn>;

  static tryCreate(matrix: Float32Array, rows: number, dimension: number): WasmDotIndex | undefined {
    const module = simdModule();
    if (!module) return undefined;
    const stride = Math.ceil(dimension / ROW_ALIGN) * ROW_ALIGN;
    const bytes = 4 * (rows * stride + MAX_QUERIES_PER_PASS * stride + BLOCK_ROWS * MAX_QUERIES_PER_PASS);
    const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
    if (pages > MAX_PAGES) return undefined;
    if (!wasmApi) return undefined;
    let memory: WasmMemory;
    try {
      memory = new wasmApi.Memory({ initial: pages, maximum: pages });
    } catch {
      return undefined; // RangeError: the runtime could not reserve that much
    }
    const instance = new wasmApi.Instance(module, { e: { m: memory } });
    const kernels = new Map<number, KernelFn>();
    for (const k of KERNELS) kernels.set(k.queries, instance.exports[`k${k.queries}`] as KernelFn);
    return new WasmDotIndex(matrix, rows, dimension, stride, memory, kernels);
  }

  private constructor(
    matrix: Float32Array,
    rows: number,
    dimension: number,
    stride: number,
    memory: WasmMemory,
    kernels: ReadonlyMap<number, KernelFn>,
  ) {
    this.rows = rows;
    this.dimension = dimension;
    this.#stride = stride;
    this.#memory = new Float32Array(memory.buffer);
    this.#kernels = kernels;
    if (stride === dimension) {
      this.#memory.set(matrix);
    } else {
      for (let r = 0; r < rows; r++) {
        this.#memory.set(matrix.subarray(r * dimension, (r + 1) * dimension), r * stride);
      }
    }
    this.#queryOffset = rows * stride;
    this.#outOffset = this.#queryOffset + MAX_QUERIES_PER_PASS * stride;
  }

  rowView(r: number): Float32Array {
    // The memory never grows (its maximum is its initial size), so views into it stay valid.
    return this.#memory.subarray(r * this.#stride, r * this.#stride + this.dimension);
  }

  copyRows(from: number, to: number, into: Float32Array, offset: number): void {
    const d = this.dimension;
    if (this.#stride === d) {
      into.set(this.#memory.subarray(from * d, to * d), offset);
      return;
    }
    for (let r = from; r < to; r++) into.set(this.rowView(r), offset + (r - from) * d);
  }

  scan(queries: Float32Array, count: number, visit: DotBlockVisitor): void {
    if (count > MAX_QUERIES_PER_PASS)
      throw new RangeError(`at most ${MAX_QUERIES_PER_PASS} queries per pass`);
    if (this.rows === 0 || count === 0) return;
    // The smallest kernel that takes `count` queries; unused query slots are zero and their dots ignored.
    const width = KERNELS.find((k) => k.queries >= count)!.queries;
    const kernel = this.#kernels.get(width)!;
    const mem = this.#memory;
    const d = this.dimension;
    const q0 = this.#queryOffset;
    mem.fill(0, q0, q0 + width * this.#stride);
    for (let k = 0; k < count; k++) {
      for (let j = 0; j < d; j++) {
        mem[q0 + ((j >> 2) * width + k) * 4 + (j & 3)] = queries[k * d + j]!;
      }
    }
    const out = mem.subarray(this.#outOffset, this.#outOffset + BLOCK_ROWS * width);
    for (let start = 0; start < this.rows; start += BLOCK_ROWS) {
      const n = Math.min(BLOCK_ROWS, this.rows - start);
      kernel(4 * start * this.#stride, n, 4 * this.#stride, 4 * q0, 4 * this.#outOffset);
      visit(start, n, out, width);
    }
  }
}

class JsDotIndex implements DotIndex {
  readonly kernel = 'js';
  readonly rows: number;
  readonly dimension: number;
  readonly #matrix: Float32Array;
  readonly #out = new Float32Array(BLOCK_ROWS * MAX_QUERIES_PER_PASS);

  constructor(matrix: Float32Array, rows: number, dimension: number) {
    this.rows = rows;
    this.dimension = dimension;
    this.#matrix = matrix;
  }

  rowView(r: number): Float32Array {
    return this.#matrix.subarray(r * this.dimension, (r + 1) * this.dimension);
  }

  copyRows(from: number, to: number, into: Float32Array, offset: number): void {
    into.set(this.#matrix.subarray(from * this.dimension, to * this.dimension), offset);
  }

  scan(queries: Float32Array, count: number, visit: DotBlockVisitor): void {
    if (count > MAX_QUERIES_PER_PASS)
      throw new RangeError(`at most ${MAX_QUERIES_PER_PASS} queries per pass`);
    const m = this.#matrix;
    const d = this.dimension;
    const out = this.#out;
    for (let start = 0; start < this.rows; start += BLOCK_ROWS) {
      const n = Math.min(BLOCK_ROWS, this.rows - start);
      for (let k = 0; k < count; k++) {
        for (let i = 0; i < n; i++) out[i * count + k] = dot(m, (start + i) * d, queries, k * d, d);
      }
      visit(start, n, out, count);
    }
  }
}

/** `a[ao .. ao + n) · b[bo .. bo + n)` in float64, with four accumulators to break the chain of additions. */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (const end = n - (n % 4); j < end; j += 4) {
    s0 += a[ao + j]! * b[bo + j]!;
    s1 += a[ao + j + 1]! * b[bo + j + 1]!;
    s2 += a[ao + j + 2]! * b[bo + j + 2]!;
    s3 += a[ao + j + 3]! * b[bo + j + 3]!;
  }
  for (; j < n; j++) s0 += a[ao + j]! * b[bo + j]!;
  return s0 + s1 + (s2 + s3);
}
