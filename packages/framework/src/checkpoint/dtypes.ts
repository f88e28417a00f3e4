/**
 * PyTorch element types: how checkpoints name them and how their bytes become JavaScript typed arrays.
 */

import type { NamedTensor, TensorDType } from './types.js';

/** Size and name of one element type. */
export interface DTypeInfo {
  readonly name: TensorDType;
  /** Bytes per element on disk. */
  readonly itemSize: number;
}

/** Every supported element type, by name. */
export const DTYPES: Readonly<Record<TensorDType, DTypeInfo>> = {
  float32: { name: 'float32', itemSize: 4 },
  float64: { name: 'float64', itemSize: 8 },
  float16: { name: 'float16', itemSize: 2 },
  bfloat16: { name: 'bfloat16', itemSize: 2 },
  int64: { name: 'int64', itemSize: 8 },
  int32: { name: 'int32', itemSize: 4 },
  int16: { name: 'int16', itemSize: 2 },
  int8: { name: 'int8', itemSize: 1 },
  uint8: { name: 'uint8', itemSize: 1 },
  bool: { name: 'bool', itemSize: 1 },
};

/**
 * Legacy typed-storage classes (`torch.FloatStorage`, also under `torch.cuda.` for files saved from a GPU)
 * and the element type each holds.
 */
export const STORAGE_CLASS_DTYPES: ReadonlyMap<string, TensorDType> = new Map([
  ['FloatStorage', 'float32'],
  ['DoubleStorage', 'float64'],
  ['HalfStorage', 'float16'],
  ['BFloat16Storage', 'bfloat16'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
]);

/**
 * Byte-addressed storage classes of torch ≥ 1.12. Their element count is a byte count; the tensor's dtype
 * comes separately (`_rebuild_tensor_v3`).
 */
export const UNTYPED_STORAGE_CLASSES: readonly string[] = [
  'torch.UntypedStorage',
  'torch.storage.UntypedStorage',
  'torch._UntypedStorage',
  'torch.storage._UntypedStorage',
];

/** `torch.<name>` dtype globals (a pickled `torch.dtype` is a global of that name), aliases included. */
export const DTYPE_GLOBALS: ReadonlyMap<string, TensorDType> = new Map([
  ['float32', 'float32'],
  ['float', 'float32'],
  ['float64', 'float64'],
  ['double', 'float64'],
  ['float16', 'float16'],
  ['half', 'float16'],
  ['bfloat16', 'bfloat16'],
  ['int64', 'int64'],
  ['long', 'int64'],
  ['int32', 'int32'],
  ['int', 'int32'],
  ['int16', 'int16'],
  ['short', 'int16'],
  ['int8', 'int8'],
  ['uint8', 'uint8'],
  ['bool', 'bool'],
]);

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Exact IEEE 754 binary16 → number (every half value is representable in float32). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/**
 * Turns densely packed elements into the output array of {@link NamedTensor}. `raw` must be freshly
 * allocated (byteOffset 0, so typed views are aligned) and is consumed: its bytes may be swapped in place.
 */
export function decodeElements(
  dtype: DTypeInfo,
  raw: Uint8Array<ArrayBuffer>,
  fileLittleEndian: boolean,
): NamedTensor['data'] {
  const n = raw.length / dtype.itemSize;
  if (dtype.itemSize > 1 && fileLittleEndian !== HOST_LITTLE_ENDIAN) swapBytes(raw, dtype.itemSize);
  const buffer = raw.buffer;
  switch (dtype.name) {
    case 'float32':
      return new Float32Array(buffer, 0, n);
    case 'float64':
      return new Float64Array(buffer, 0, n);
    case 'int64':
      return new BigInt64Array(buffer, 0, n);
    case 'int32':
      return new Int32Array(buffer, 0, n);
    case 'int16':
      return new Int16Array(buffer, 0, n);
    case 'int8':
      return new Int8Array(buffer, 0, n);
    case 'uint8':
      return raw;
    case 'bool': {
      // Python reads any non-zero byte as True; normalise so consumers can compare with 1.
      for (let i = 0; i < n; i++) raw[i] = raw[i] ? 1 : 0;
      return raw;
    }
    case 'float16': {
      const bits = new Uint16Array(buffer, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(bits[i]!);
      return out;
    }
    case 'bfloat16': {
      // bfloat16 is the top half of a float32, so widening is a shift.
      const bits = new Uint16Array(buffer, 0, n);
      const wide = new Uint32Array(n);
      for (let i = 0; i < n; i++) wide[i] = bits[i]! << 16;
      return new Float32Array(wide.buffer);
    }
  }
}

function swapBytes(raw: Uint8Array, size: number): void {
  for (let i = 0; i < raw.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = raw[a]!;
      raw[a] = raw[b]!;
      raw[b] = t;
    }
  }
}
