import { describe, expect, it } from 'vitest';
import {
  concat,
  legacyCheckpoint,
  PickleWriter,
  stateDictPickle,
  type TensorSpec,
  tensorSpec,
  writeTensor,
  zipCheckpoint,
} from './__fixtures__/pickle-builder.js';
import { halfToNumber } from './dtypes.js';
import { checkpointFormat, readCheckpoint } from './index.js';

function le(
  kind: 'f32' | 'f64' | 'i64' | 'i32' | 'i16' | 'u16',
  values: readonly (number | bigint)[],
): Uint8Array {
  const size = { f32: 4, f64: 8, i64: 8, i32: 4, i16: 2, u16: 2 }[kind];
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (kind === 'f32') view.setFloat32(i * size, Number(v), true);
    if (kind === 'f64') view.setFloat64(i * size, Number(v), true);
    if (kind === 'i64') view.setBigInt64(i * size, BigInt(v), true);
    if (kind === 'i32') view.setInt32(i * size, Number(v), true);
    if (kind === 'i16') view.setInt16(i * size, Number(v), true);
    if (kind === 'u16') view.setUint16(i * size, Number(v), true);
  });
  return out;
}

describe('zip format, hand-built with fflate (level 0)', () => {
  // float16 bit patterns: 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0, +inf, 0.333 (rounded).
  const halfBits = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x3555];
  const halfValues = [1, -2, 0.5, 65504, 2 ** -24, -0, Number.POSITIVE_INFINITY, 0.333251953125];

  const specs: TensorSpec[] = [
    // 2×4 float16 stored as the transpose of a 4×2 block: stride (1, 2).
    tensorSpec('half.t', 'HalfStorage', 'h', 8, { size: [2, 4], stride: [1, 2] }),
    tensorSpec('steps', 'LongStorage', 'l', 3),
    tensorSpec('scalar', 'LongStorage', 'l', 3, { offset: 2, size: [], stride: [] }),
    tensorSpec('f64', 'DoubleStorage', 'd', 2),
    tensorSpec('i32', 'IntStorage', 'i', 2),
    tensorSpec('i16', 'ShortStorage', 's', 2),
    tensorSpec('i8', 'CharStorage', 'c', 2),
    tensorSpec('u8', 'ByteStorage', 'b', 2),
    tensorSpec('mask', 'BoolStorage', 'm', 3),
    tensorSpec('bf16', 'BFloat16Storage', 'bf', 2),
    // A Parameter (keep_vars=True state dicts) and a GPU-saved storage class.
    tensorSpec('param', 'FloatStorage', 'p', 6, {
      storageModule: 'torch.cuda',
      offset: 1,
      size: [2, 2],
      stride: [1, 2],
      parameter: true,
    }),
    // Untyped storage (bytes) + _rebuild_tensor_v3 with a dtype global, as torch 2.x writes for some dtypes.
    tensorSpec('v3', 'UntypedStorage', 'u', 12, { offset: 1, size: [2], v3Dtype: 'float32' }),
    // Empty tensor: zero elements, no bytes read.
    tensorSpec('empty', 'FloatStorage', 'e', 0, { size: [0, 3], stride: [3, 1] }),
    // Broadcast view (stride 0) of a single element.
    tensorSpec('expanded', 'FloatStorage', 'x', 1, { size: [2, 3], stride: [0, 0] }),
  ];

  const storages: Record<string, Uint8Array> = {
    // Column-major 4×2 block, so the row-major 2×4 read is halfValues in order.
    h: le(
      'u16',
      [0, 4, 1, 5, 2, 6, 3, 7].map((i) => halfBits[i]!),
    ),
    l: le('i64', [-5n, 9007199254740993n, 12n]),
    d: le('f64', [Math.PI, -1e300]),
    i: le('i32', [-2147483648, 7]),
    s: le('i16', [-32768, 300]),
    c: Uint8Array.from([0xff, 0x7f]),
    b: Uint8Array.from([0xff, 0x01]),
    m: Uint8Array.from([0, 1, 2]),
    bf: le('u16', [0x3f80, 0xc0a0]),
    p: le('f32', [9, 1, 2, 3, 4, 9]),
    u: le('f32', [9, 1.5, -2.5]),
    e: new Uint8Array(0),
    x: le('f32', [7]),
  };

  const bytes = zipCheckpoint(stateDictPickle(specs, false), storages);
  const state = readCheckpoint(bytes);

  it('is detected as zip and keeps key order', () => {
    expect(checkpointFormat(bytes)).toBe('zip');
    expect([...state.keys()]).toEqual(specs.map((s) => s.name));
  });

  it('widens float16 exactly, following a transposed layout', () => {
    const half = state.get('half.t')!;
    expect(half.dtype).toBe('float16');
    expect(half.shape).toEqual([2, 4]);
    expect(half.data).toBeInstanceOf(Float32Array);
    expect(Array.from(half.data as Float32Array)).toEqual(halfValues);
    expect(Object.is((half.data as Float32Array)[5], -0)).toBe(true);
  });

  it('keeps int64 exactly as BigInt64Array, including values beyond 2^53 and offset scalars', () => {
    const steps = state.get('steps')!;
    expect(steps.dtype).toBe('int64');
    expect(steps.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(steps.data as BigInt64Array)).toEqual([-5n, 9007199254740993n, 12n]);
    const scalar = state.get('scalar')!;
    expect(scalar.shape).toEqual([]);
    expect(Array.from(scalar.data as BigInt64Array)).toEqual([12n]);
  });

  it('decodes the other integer, float and bool dtypes into the documented arrays', () => {
    expect(state.get('f64')!.data).toEqual(new Float64Array([Math.PI, -1e300]));
    expect(state.get('i32')!.data).toEqual(new Int32Array([-2147483648, 7]));
    expect(state.get('i16')!.data).toEqual(new Int16Array([-32768, 300]));
    expect(state.get('i8')!.data).toEqual(new Int8Array([-1, 127]));
    expect(state.get('u8')!.data).toEqual(new Uint8Array([255, 1]));
    const mask = state.get('mask')!;
    expect(mask.dtype).toBe('bool');
    expect(mask.data).toEqual(new Uint8Array([0, 1, 1]));
    const bf16 = state.get('bf16')!;
    expect(bf16.dtype).toBe('bfloat16');
    expect(bf16.data).toEqual(new Float32Array([1, -5]));
  });

  it('unwraps _rebuild_parameter and respects offset + strides of a cuda storage', () => {
    const param = state.get('param')!;
    expect(param.dtype).toBe('float32');
    // storage [9, 1, 2, 3, 4, 9], offset 1, stride (1, 2): [[1, 3], [2, 4]].
    expect(Array.from(param.data as Float32Array)).toEqual([1, 3, 2, 4]);
  });

  it('reads _rebuild_tensor_v3 over an untyped storage with the dtype global', () => {
    const v3 = state.get('v3')!;
    expect(v3.dtype).toBe('float32');
    expect(Array.from(v3.data as Float32Array)).toEqual([1.5, -2.5]);
  });

  it('handles empty tensors and stride-0 views', () => {
    expect(state.get('empty')!.shape).toEqual([0, 3]);
    expect(state.get('empty')!.data.length).toBe(0);
    expect(Array.from(state.get('expanded')!.data as Float32Array)).toEqual([7, 7, 7, 7, 7, 7]);
  });

  it('accepts any archive prefix and a big-endian byteorder entry', () => {
    const big = (values: number[]) => {
      const out = new Uint8Array(values.length * 4);
      const view = new DataView(out.buffer);
      for (const [i, v] of values.entries()) view.setFloat32(i * 4, v, false);
      return out;
    };
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 3)], false);
    const read = readCheckpoint(
      zipCheckpoint(pickle, { 0: big([1, -2, 3.5]) }, { prefix: 'my_model', byteorder: 'big' }),
    );
    expect(Array.from(read.get('w')!.data as Float32Array)).toEqual([1, -2, 3.5]);
  });
});

describe('state dict containers', () => {
  const w = tensorSpec('w', 'FloatStorage', '0', 2);
  const data = { 0: le('f32', [1, 2]) };

  it('uses the state_dict entry of a training checkpoint and skips non-tensor values', () => {
    const p = new PickleWriter().proto(2).emptyDict().mark().str('epoch').int(7).str('state_dict');
    p.global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
    writeTensor(p, w, false);
    p.str('note').str('not a tensor').setItems();
    p.setItems().stop();
    const state = readCheckpoint(zipCheckpoint(p.bytes(), data));
    expect([...state.keys()]).toEqual(['w']);
    expect(Array.from(state.get('w')!.data as Float32Array)).toEqual([1, 2]);
  });

  it('accepts a plain dict and ignores the _metadata BUILD of an OrderedDict', () => {
    const plain = new PickleWriter().proto(2).emptyDict().str('w');
    writeTensor(plain, w, false);
    plain.setItem().stop();
    expect([...readCheckpoint(zipCheckpoint(plain.bytes(), data)).keys()]).toEqual(['w']);

    const ordered = new PickleWriter()
      .proto(2)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .str('w');
    writeTensor(ordered, w, false);
    ordered.setItem();
    ordered.emptyDict().str('_metadata').global('collections', 'OrderedDict').emptyTuple().reduce();
    ordered.str('').emptyDict().str('version').int(1).setItem().setItem();
    ordered.setItem().build().stop();
    expect([...readCheckpoint(zipCheckpoint(ordered.bytes(), data)).keys()]).toEqual(['w']);
  });

  it('reads protocol 4 pickles: FRAME, STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE', () => {
    const body = new PickleWriter()
      .stackGlobal('collections', 'OrderedDict')
      .memoize()
      .emptyTuple()
      .reduce()
      .memoize();
    body.shortUnicode('w').memoize();
    body.stackGlobal('torch._utils', '_rebuild_tensor_v2').memoize().mark();
    body
      .mark()
      .shortUnicode('storage')
      .stackGlobal('torch', 'FloatStorage')
      .shortUnicode('0')
      .shortUnicode('cpu');
    body.int(2).tuple().binpersid().int(0).int(2).tuple1().int(1).tuple1().bool(false);
    body.stackGlobal('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().memoize();
    body.setItem().stop();
    const inner = body.bytes();
    const pickle = concat([new PickleWriter().proto(4).frame(inner.length).bytes(), inner]);
    expect(Array.from(readCheckpoint(zipCheckpoint(pickle, data)).get('w')!.data as Float32Array)).toEqual([
      1, 2,
    ]);
  });

  it('reads _rebuild_from_type_v2 (a tensor carrying Python attributes)', () => {
    const p = new PickleWriter().proto(2).emptyDict().str('w');
    p.global('torch._tensor', '_rebuild_from_type_v2').mark();
    p.global('torch._utils', '_rebuild_tensor_v2').global('torch', 'Tensor');
    p.mark()
      .mark()
      .str('storage')
      .global('torch', 'FloatStorage')
      .str('0')
      .str('cpu')
      .int(2)
      .tuple()
      .binpersid();
    p.int(0)
      .ints([2])
      .ints([1])
      .bool(false)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .tuple();
    p.emptyDict().str('tag').str('x').setItem();
    p.tuple().reduce().setItem().stop();
    expect(Array.from(readCheckpoint(zipCheckpoint(p.bytes(), data)).get('w')!.data as Float32Array)).toEqual(
      [1, 2],
    );
  });
});

describe('legacy format, hand-built', () => {
  it('reads storage views from view_metadata (PyTorch < 0.4) and _rebuild_tensor', () => {
    // Two tensors over views of one 6-element root: view "v1" = elements 2..5.
    const p = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    for (const [name, viewKey, viewOffset, viewSize] of [
      ['whole', null, 0, 0],
      ['tail', 'v1', 2, 4],
    ] as const) {
      p.str(name).global('torch._utils', '_rebuild_tensor').mark();
      p.mark().str('storage').global('torch', 'FloatStorage').str('root').str('cpu').int(6);
      if (viewKey === null) p.none();
      else p.str(viewKey).int(viewOffset).int(viewSize).raw(0x87);
      p.tuple().binpersid();
      if (viewKey === null) p.int(0).ints([2, 3]).ints([3, 1]);
      else p.int(1).ints([3]).ints([1]);
      p.tuple().reduce();
    }
    p.setItems().stop();
    const bytes = legacyCheckpoint(p.bytes(), [
      { key: 'root', numel: 6, data: le('f32', [0, 1, 2, 3, 4, 5]) },
    ]);
    expect(checkpointFormat(bytes)).toBe('legacy');
    const state = readCheckpoint(bytes);
    expect(Array.from(state.get('whole')!.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5]);
    // View starts at element 2; the tensor's own offset 1 then lands on element 3.
    expect(Array.from(state.get('tail')!.data as Float32Array)).toEqual([3, 4, 5]);
  });

  it('reads Python 2 strings (SHORT_BINSTRING) as keys', () => {
    const p = new PickleWriter().proto(2).emptyDict().shortBinstring('w');
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark()
      .shortBinstring('storage')
      .global('torch', 'IntStorage')
      .shortBinstring('k')
      .shortBinstring('cpu');
    p.int(1).none().tuple().binpersid().int(0).emptyTuple().emptyTuple().bool(false);
    p.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().setItem().stop();
    const state = readCheckpoint(
      legacyCheckpoint(p.bytes(), [{ key: 'k', numel: 1, data: le('i32', [-9]) }]),
    );
    expect(state.get('w')!.data).toEqual(new Int32Array([-9]));
  });
});

describe('halfToNumber', () => {
  it('decodes normals, subnormals, zeros, infinities and NaN exactly', () => {
    expect(halfToNumber(0x3c00)).toBe(1);
    expect(halfToNumber(0x3c01)).toBe(1 + 2 ** -10);
    expect(halfToNumber(0x0400)).toBe(2 ** -14);
    expect(halfToNumber(0x03ff)).toBe(1023 * 2 ** -24);
    expect(Object.is(halfToNumber(0x8000), -0)).toBe(true);
    expect(halfToNumber(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(halfToNumber(0x7e00)).toBeNaN();
    // Every finite half value is exactly representable in float32 (so widening loses nothing).
    const inexact: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = halfToNumber(bits);
      if (Number.isFinite(v) && Math.fround(v) !== v) inexact.push(bits);
    }
    expect(inexact).toEqual([]);
  });
});
