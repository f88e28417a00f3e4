/**
 * Test-only writers for pickles and `torch.save` containers, so tests can craft checkpoints (including
 * malicious and malformed ones) byte by byte without Python.
 */

import { zipSync } from 'fflate';
import type { StateDict } from '../types.js';

const encoder = new TextEncoder();

/** Appends pickle opcodes; each method returns `this` so a pickle reads top to bottom. */
export class PickleWriter {
  private readonly parts: number[] = [];

  raw(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }

  private u32(n: number): this {
    return this.raw(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }

  proto(version = 2): this {
    return this.raw(0x80, version);
  }

  frame(length: number): this {
    this.raw(0x95).u32(length);
    return this.u32(0);
  }

  global(module: string, name: string): this {
    this.raw(0x63);
    this.raw(...encoder.encode(`${module}\n${name}\n`));
    return this;
  }

  stackGlobal(module: string, name: string): this {
    return this.shortUnicode(module).memoize().shortUnicode(name).memoize().raw(0x93);
  }

  str(value: string): this {
    const bytes = encoder.encode(value);
    this.raw(0x58).u32(bytes.length);
    return this.raw(...bytes);
  }

  shortUnicode(value: string): this {
    const bytes = encoder.encode(value);
    return this.raw(0x8c, bytes.length, ...bytes);
  }

  shortBinstring(value: string): this {
    const bytes = encoder.encode(value);
    return this.raw(0x55, bytes.length, ...bytes);
  }

  int(n: number): this {
    if (n >= 0 && n < 0x100) return this.raw(0x4b, n);
    if (n >= 0 && n < 0x10000) return this.raw(0x4d, n & 0xff, n >> 8);
    if (n >= -0x80000000 && n < 0x80000000) return this.raw(0x4a).u32(n);
    throw new Error('int out of range for the test writer');
  }

  /** LONG1 with an explicit little-endian two's-complement payload. */
  long1(bytes: number[]): this {
    return this.raw(0x8a, bytes.length, ...bytes);
  }

  float(value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, false);
    return this.raw(0x47, ...b);
  }

  none(): this {
    return this.raw(0x4e);
  }

  bool(value: boolean): this {
    return this.raw(value ? 0x88 : 0x89);
  }

  mark(): this {
    return this.raw(0x28);
  }

  tuple(): this {
    return this.raw(0x74);
  }

  emptyTuple(): this {
    return this.raw(0x29);
  }

  tuple1(): this {
    return this.raw(0x85);
  }

  tuple2(): this {
    return this.raw(0x86);
  }

  /** A tuple of small ints, built with MARK … TUPLE. */
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  emptyDict(): this {
    return this.raw(0x7d);
  }

  emptyList(): this {
    return this.raw(0x5d);
  }

  setItem(): this {
    return this.raw(0x73);
  }

  setItems(): this {
    return this.raw(0x75);
  }

  appends(): this {
    return this.raw(0x65);
  }

  reduce(): this {
    return this.raw(0x52);
  }

  build(): this {
    return this.raw(0x62);
  }

  binpersid(): this {
    return this.raw(0x51);
  }

  binput(index: number): this {
    return this.raw(0x71, index);
  }

  binget(index: number): this {
    return this.raw(0x68, index);
  }

  memoize(): this {
    return this.raw(0x94);
  }

  stop(): this {
    return this.raw(0x2e);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One tensor of a hand-built state dict. */
export interface TensorSpec {
  name: string;
  /** e.g. `HalfStorage`, or `UntypedStorage` (with `v3Dtype`). */
  storageClass: string;
  storageModule?: string;
  key: string;
  /** Storage element count (bytes for untyped storages). */
  storageNumel: number;
  offset: number;
  size: number[];
  stride: number[];
  /** Emit `_rebuild_tensor_v3(..., torch.<v3Dtype>)` instead of v2. */
  v3Dtype?: string;
  /** Wrap in `_rebuild_parameter`. */
  parameter?: boolean;
}

/**
 * A {@link TensorSpec} for a contiguous 1-d view of a whole storage of `numel` elements (offset 0, size
 * `[numel]`, stride `[1]`), with `overrides` on top.
 */
export function tensorSpec(
  name: string,
  storageClass: string,
  key: string,
  numel: number,
  overrides: Partial<Omit<TensorSpec, 'name' | 'storageClass' | 'key' | 'storageNumel'>> = {},
): TensorSpec {
  return {
    name,
    storageClass,
    key,
    storageNumel: numel,
    offset: 0,
    size: [numel],
    stride: [1],
    ...overrides,
  };
}

/** Writes the tensor-rebuilding part of a state-dict pickle for `spec`. */
export function writeTensor(w: PickleWriter, spec: TensorSpec, legacy: boolean): void {
  if (spec.parameter) w.global('torch._utils', '_rebuild_parameter').mark();
  w.global('torch._utils', spec.v3Dtype ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2').mark();
  w.mark()
    .str('storage')
    .global(spec.storageModule ?? 'torch', spec.storageClass)
    .str(spec.key)
    .str('cpu')
    .int(spec.storageNumel);
  if (legacy) w.none();
  w.tuple().binpersid();
  w.int(spec.offset).ints(spec.size).ints(spec.stride).bool(false);
  w.global('collections', 'OrderedDict').emptyTuple().reduce();
  if (spec.v3Dtype) w.global('torch', spec.v3Dtype);
  w.tuple().reduce();
  if (spec.parameter)
    w.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
}

/** A protocol-2 pickle of `OrderedDict` mapping each spec's name to its tensor. */
export function stateDictPickle(specs: readonly TensorSpec[], legacy: boolean): Uint8Array {
  const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const spec of specs) {
    w.str(spec.name);
    writeTensor(w, spec, legacy);
  }
  return w.setItems().stop().bytes();
}

/** A zip-format checkpoint, stored (level 0) like torch writes it. */
export function zipCheckpoint(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { prefix?: string; byteorder?: string } = {},
): Uint8Array {
  const prefix = options.prefix ?? 'archive';
  const files: Record<string, Uint8Array> = { [`${prefix}/data.pkl`]: pickle };
  if (options.byteorder !== undefined) files[`${prefix}/byteorder`] = encoder.encode(options.byteorder);
  for (const [key, data] of Object.entries(storages)) files[`${prefix}/data/${key}`] = data;
  files[`${prefix}/version`] = encoder.encode('3\n');
  return zipSync(files, { level: 0 });
}

/** The header pickles of the legacy format: magic number, protocol version, sys_info. */
export function legacyHeader(): Uint8Array {
  const magic = new PickleWriter()
    .proto(2)
    .long1([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19])
    .stop();
  const version = new PickleWriter().proto(2).int(1001).stop();
  const sysInfo = new PickleWriter()
    .proto(2)
    .emptyDict()
    .mark()
    .str('protocol_version')
    .int(1001)
    .str('little_endian')
    .bool(true)
    .setItems()
    .stop();
  return concat([magic.bytes(), version.bytes(), sysInfo.bytes()]);
}

/** A legacy-format checkpoint: header, object pickle, key list, then `int64 count + bytes` per storage. */
export function legacyCheckpoint(
  objectPickle: Uint8Array,
  storages: ReadonlyArray<{ key: string; numel: number; data: Uint8Array }>,
): Uint8Array {
  const keys = new PickleWriter().proto(2).emptyList().mark();
  for (const s of storages) keys.str(s.key);
  keys.appends().stop();
  const parts = [legacyHeader(), objectPickle, keys.bytes()];
  for (const s of storages) {
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigInt64(0, BigInt(s.numel), true);
    parts.push(count, s.data);
  }
  return concat(parts);
}

const STORAGE_CLASS: Readonly<Record<string, string>> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  int64: 'LongStorage',
  int32: 'IntStorage',
};

/**
 * A state dict as the bytes of a legacy-format `torch.save` file (the format of facenet-pytorch's release
 * `.pt` files): one contiguous storage per tensor, each rebuilt with `torch._utils._rebuild_tensor_v2`, like
 * PyTorch 1.x writes module state dicts.
 */
export function legacyCheckpointBytes(stateDict: StateDict): Uint8Array {
  const specs: TensorSpec[] = [];
  const storages: { key: string; numel: number; data: Uint8Array }[] = [];
  for (const tensor of stateDict.values()) {
    const storageClass = STORAGE_CLASS[tensor.dtype];
    if (!storageClass) throw new Error(`legacyCheckpointBytes: no storage class for ${tensor.dtype}`);
    const key = String(specs.length);
    const numel = tensor.data.length;
    const stride = tensor.shape.map((_, i) => tensor.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    specs.push({
      name: tensor.name,
      storageClass,
      key,
      storageNumel: numel,
      offset: 0,
      size: [...tensor.shape],
      stride,
    });
    const { buffer, byteOffset, byteLength } = tensor.data;
    storages.push({ key, numel, data: new Uint8Array(buffer, byteOffset, byteLength) });
  }
  return legacyCheckpoint(stateDictPickle(specs, true), storages);
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A valid checkpoint of no network facerec knows (one 2×2 float tensor `other.weight`): what a mirror serving the
 * wrong file under a checkpoint's name hands over.
 */
export function foreignCheckpointBytes(): Uint8Array {
  const tensor = {
    name: 'other.weight',
    dtype: 'float32',
    shape: [2, 2],
    data: new Float32Array(4),
  } as const;
  return legacyCheckpointBytes(new Map([[tensor.name, tensor]]));
}
