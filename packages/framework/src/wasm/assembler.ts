/**
 * A minimal WebAssembly binary writer: enough to emit the few small SIMD kernels facerec uses (gallery
 * matching, MTCNN resampling) from opcodes, with no toolchain, dependency or native code. Kernels are built
 * and compiled at run time, once per process; where the runtime lacks WebAssembly SIMD, callers fall back
 * to their JavaScript implementations.
 */

export const uleb = (value: number): number[] => {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
};

export const sleb = (value: number): number[] => {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
};

export const str = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

/** Value types. */
export const I32 = 0x7f;
export const V128 = 0x7b;

/** A SIMD (0xfd-prefixed) instruction without immediates. */
const simd = (code: number): number[] => [0xfd, ...uleb(code)];
/** A SIMD memory instruction: `align` is log2 of the alignment in bytes, then a static offset. */
const simdMem = (code: number, align: number) => (offset: number) => [
  0xfd,
  ...uleb(code),
  align,
  ...uleb(offset),
];

/** Instructions, by their text-format names. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  i32Eqz: [0x45],
  i32LtU: [0x49],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  f32Add: [0x92],
  /** i32.load align=4 bytes, static offset. */
  i32Load: (offset: number) => [0x28, 0x02, ...uleb(offset)],
  /** i32.store align=4 bytes, static offset. */
  i32Store: (offset: number) => [0x36, 0x02, ...uleb(offset)],
  /** f32.store align=4 bytes (2^2), static offset. */
  f32Store: (offset: number) => [0x38, 0x02, ...uleb(offset)],
  /** v128.load with 16-byte alignment hint, static offset. */
  v128Load: simdMem(0x00, 4),
  /** v128.load without alignment hint (for addresses that are not multiples of 16). */
  v128LoadUnaligned: simdMem(0x00, 0),
  /** v128.load8x8_u: eight bytes, zero-extended to i16x8. */
  v128Load8x8U: simdMem(0x02, 0),
  /** v128.load32_splat: one 32-bit value into all four lanes. */
  v128Load32Splat: simdMem(0x09, 2),
  /** v128.store without alignment hint. */
  v128StoreUnaligned: simdMem(0x0b, 0),
  /** v128.store32_lane: stores one 32-bit lane. */
  v128Store32Lane: (offset: number, lane: number) => [0xfd, ...uleb(0x5a), 0x02, ...uleb(offset), lane],
  /** v128.const from 16 bytes. */
  v128Const: (bytes: readonly number[]) => [0xfd, ...uleb(0x0c), ...bytes],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  v128And: simd(0x4e),
  f32x4ExtractLane: (lane: number) => [...simd(0x1f), lane],
  i32x4ExtendLowI16x8U: simd(0xa9),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f32x4ConvertI32x4U: simd(0xfb),
};

/** 16 little-endian bytes of four float32 values, for {@link op.v128Const}. */
export function f32x4Bytes(values: readonly [number, number, number, number]): number[] {
  return Array.from(new Uint8Array(Float32Array.from(values).buffer));
}

/** 16 little-endian bytes of four int32 values, for {@link op.v128Const}. */
export function i32x4Bytes(values: readonly [number, number, number, number]): number[] {
  return Array.from(new Uint8Array(Int32Array.from(values).buffer));
}

/** A function body: local declarations (`[count, type]` pairs) and code, with its size prefix. */
export function functionBody(locals: ReadonlyArray<readonly [number, number]>, code: number[]): number[] {
  const body = [...vec(locals.map(([n, type]) => [...uleb(n), type])), ...code, ...op.end];
  return [...uleb(body.length), ...body];
}

/**
 * A module importing one memory as `e.m` and exporting `functions` (each `(i32 × params) → ()`) by name.
 */
export function moduleBytes(
  functions: ReadonlyArray<{ readonly name: string; readonly params: number; readonly body: number[] }>,
): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(new Array(f.params).fill([I32])), ...vec([])]);
  const memoryImport = [...str('e'), ...str('m'), 0x02, 0x00, ...uleb(1)];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(functions.map((f) => f.body))),
  ]);
}

/**
 * The part of the WebAssembly API used here. TypeScript declares `WebAssembly` only in the DOM library, which
 * this package does not load, so it is typed locally.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly kind?: never;
}
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}

/** The runtime's WebAssembly API, if it has one. */
export const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** WebAssembly page size in bytes. */
export const WASM_PAGE = 65536;

/** Compiles `bytes` once (lazily); null where the runtime cannot (no WebAssembly, or no SIMD). */
export function lazyModule(build: () => Uint8Array): () => WasmModule | null {
  let module: WasmModule | null | undefined;
  return () => {
    if (module === undefined) {
      try {
        const bytes = build();
        module = wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
      } catch {
        module = null;
      }
    }
    return module;
  };
}
