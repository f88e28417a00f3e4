/**
 * The PyTorch half of the checkpoint reader: which globals a state-dict pickle may name, what each one
 * builds, how persistent ids become storages, and how a (storage, offset, size, stride) view becomes a
 * dense row-major tensor. Shared by the legacy and the zip container readers.
 */

import { CheckpointError } from '../errors.js';
import {
  DTYPE_GLOBALS,
  DTYPES,
  type DTypeInfo,
  decodeElements,
  STORAGE_CLASS_DTYPES,
  UNTYPED_STORAGE_CLASSES,
} from './dtypes.js';
import {
  describePyValue,
  type GlobalBinding,
  PickleGlobal,
  type UnpickleResult,
  unpickle,
} from './pickle.js';
import type { NamedTensor, StateDict } from './types.js';

const MAX_BROADCAST_ELEMENTS = 1 << 24;

/** A storage as saved: one block of bytes, named by its key in the container. */
export class StorageRoot {
  /** The bytes, attached by the container reader once it has found them. */
  bytes: Uint8Array | undefined;

  constructor(
    readonly key: string,
    /** Element type the storage was saved as (`uint8` for untyped storages). */
    readonly dtype: DTypeInfo,
    /** Element count the pickle declared. */
    readonly numel: number,
  ) {}

  /** Bytes the pickle says the storage holds. */
  get byteLength(): number {
    return this.numel * this.dtype.itemSize;
  }
}

/** The storage a tensor points at: a whole {@link StorageRoot} or, in old legacy files, a slice of one. */
export class StorageView {
  constructor(
    readonly root: StorageRoot,
    readonly dtype: DTypeInfo,
    readonly byteOffset: number,
    readonly byteLength: number,
  ) {}
}

/** A tensor as the pickle describes it; its data is gathered later, once storages have bytes. */
export class TensorRef {
  constructor(
    readonly storage: StorageView,
    readonly dtype: DTypeInfo,
    /** In elements of `dtype`, as torch counts it. */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

type Marker =
  | { readonly kind: 'storage-class'; readonly dtype: DTypeInfo }
  | { readonly kind: 'dtype'; readonly dtype: DTypeInfo }
  | { readonly kind: 'tensor-class' }
  | { readonly kind: 'tensor-rebuild' };

function markerOf(value: unknown): Marker | undefined {
  return value instanceof PickleGlobal ? (value.binding.value as Marker | undefined) : undefined;
}

function fail(message: string): never {
  throw new CheckpointError(message);
}

function nonNegativeInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(
      `${what} must be a non-negative integer, got ${typeof value === 'bigint' ? value : describePyValue(value)}`,
    );
  }
  return value;
}

function intTuple(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) fail(`${what} must be a tuple of integers, got ${describePyValue(value)}`);
  return value.map((v, i) => nonNegativeInt(v, `${what}[${i}]`));
}

/** A Python 3 `str`, or a Python 2 `str` (bytes) holding ASCII, or an int used as a key. */
function text(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder('latin1').decode(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return fail(`${what} must be a string, got ${describePyValue(value)}`);
}

function rebuildTensor(args: readonly unknown[], version: 1 | 2 | 3): TensorRef {
  const [minArgs, maxArgs] = version === 1 ? [4, 4] : version === 2 ? [6, 7] : [7, 8];
  if (args.length < minArgs || args.length > maxArgs) {
    fail(`expected ${minArgs === maxArgs ? minArgs : `${minArgs}-${maxArgs}`} arguments, got ${args.length}`);
  }
  const storage = args[0];
  if (!(storage instanceof StorageView))
    fail(`argument 0 must be a storage, got ${describePyValue(storage)}`);
  const offset = nonNegativeInt(args[1], 'storage_offset');
  const shape = intTuple(args[2], 'size');
  const stride = intTuple(args[3], 'stride');
  if (shape.length !== stride.length)
    fail(`size has ${shape.length} dimensions but stride has ${stride.length}`);
  let dtype = storage.dtype;
  if (version === 3) {
    const marker = markerOf(args[6]);
    if (marker?.kind !== 'dtype') fail(`argument 6 must be a torch dtype, got ${describePyValue(args[6])}`);
    dtype = marker.dtype;
  }
  return new TensorRef(storage, dtype, offset, Object.freeze(shape), Object.freeze(stride));
}

function tensorArg(value: unknown): TensorRef {
  if (!(value instanceof TensorRef)) fail(`expected a tensor, got ${describePyValue(value)}`);
  return value;
}

function buildAllowList(): ReadonlyMap<string, GlobalBinding> {
  const globals = new Map<string, GlobalBinding>();
  const rebuild = (call: (args: readonly unknown[]) => unknown): GlobalBinding => ({
    call,
    value: { kind: 'tensor-rebuild' } satisfies Marker,
  });

  globals.set('collections.OrderedDict', {
    call: (args) => {
      if (args.length === 0) return new Map();
      const items = args[0];
      if (args.length === 1 && Array.isArray(items)) {
        return new Map(
          items.map((pair) => {
            if (!Array.isArray(pair) || pair.length !== 2)
              fail('OrderedDict items must be (key, value) pairs');
            return [pair[0], pair[1]] as const;
          }),
        );
      }
      return fail('OrderedDict takes no arguments or one list of pairs');
    },
  });
  globals.set(
    'torch._utils._rebuild_tensor',
    rebuild((args) => rebuildTensor(args, 1)),
  );
  globals.set(
    'torch._utils._rebuild_tensor_v2',
    rebuild((args) => rebuildTensor(args, 2)),
  );
  globals.set(
    'torch._utils._rebuild_tensor_v3',
    rebuild((args) => rebuildTensor(args, 3)),
  );
  // A Parameter is its data plus autograd flags that inference does not need.
  globals.set(
    'torch._utils._rebuild_parameter',
    rebuild((args) => tensorArg(args[0])),
  );
  globals.set(
    'torch._utils._rebuild_parameter_with_state',
    rebuild((args) => tensorArg(args[0])),
  );
  // torch wraps tensors that carry Python attributes (or are Parameter/Tensor subclasses) in this call.
  globals.set(
    'torch._tensor._rebuild_from_type_v2',
    rebuild((args) => {
      const [func, newType, funcArgs] = args;
      if (args.length !== 4) fail(`expected 4 arguments, got ${args.length}`);
      if (
        !(func instanceof PickleGlobal) ||
        markerOf(func)?.kind !== 'tensor-rebuild' ||
        !func.binding.call
      ) {
        fail(`argument 0 must be a tensor rebuild function, got ${describePyValue(func)}`);
      }
      if (markerOf(newType)?.kind !== 'tensor-class') {
        fail(`tensor subclass ${describePyValue(newType)} is not supported`);
      }
      if (!Array.isArray(funcArgs)) fail(`argument 2 must be a tuple, got ${describePyValue(funcArgs)}`);
      return tensorArg(func.binding.call(funcArgs));
    }),
  );
  globals.set('torch.Tensor', { value: { kind: 'tensor-class' } satisfies Marker });
  globals.set('torch.nn.parameter.Parameter', { value: { kind: 'tensor-class' } satisfies Marker });
  globals.set('torch.Size', {
    call: (args) => {
      if (args.length !== 1 || !Array.isArray(args[0])) fail('torch.Size takes one tuple');
      return Object.freeze([...args[0]]);
    },
  });
  // How Python 3 pickles `bytes` at protocol 2: `_codecs.encode(text, 'latin1')`. Pure data, no code.
  globals.set('_codecs.encode', {
    call: (args) => {
      const [value, encoding] = args;
      if (typeof value !== 'string' || !/^(latin-?1|iso-8859-1)$/i.test(String(encoding))) {
        fail('only _codecs.encode(str, "latin1") is supported');
      }
      const out = new Uint8Array(value.length);
      for (let i = 0; i < value.length; i++) {
        const code = value.charCodeAt(i);
        if (code > 0xff) fail('_codecs.encode: character outside latin1');
        out[i] = code;
      }
      return out;
    },
  });

  for (const [cls, dtype] of STORAGE_CLASS_DTYPES) {
    const binding: GlobalBinding = {
      value: { kind: 'storage-class', dtype: DTYPES[dtype] } satisfies Marker,
    };
    globals.set(`torch.${cls}`, binding);
    globals.set(`torch.cuda.${cls}`, binding);
  }
  for (const name of UNTYPED_STORAGE_CLASSES) {
    globals.set(name, { value: { kind: 'storage-class', dtype: DTYPES.uint8 } satisfies Marker });
  }
  for (const [name, dtype] of DTYPE_GLOBALS) {
    globals.set(`torch.${name}`, { value: { kind: 'dtype', dtype: DTYPES[dtype] } satisfies Marker });
  }
  return globals;
}

/** What a container reader hands back: the unpickled top-level object, its storages holding their bytes. */
export interface ContainerContents {
  readonly top: unknown;
  /** Byte order of the storage data (legacy files are always little-endian; zip files say). */
  readonly littleEndian: boolean;
}

/** Every global a state-dict pickle may name, bound to data-only TypeScript implementations. */
export const TORCH_GLOBALS: ReadonlyMap<string, GlobalBinding> = buildAllowList();

/** Why a global outside {@link TORCH_GLOBALS} is refused. */
export function torchRefusalReason(qualifiedName: string): string {
  if (
    /^torch\.(cuda\.)?\w*Storage$|^torch\.(u?int\d+|float8\w*|complex\w*|c(half|float|double)|q\w+|bits\w+)$/.test(
      qualifiedName,
    )
  ) {
    return `unsupported element type; supported: ${Object.keys(DTYPES).join(', ')}`;
  }
  return qualifiedName.startsWith('torch.')
    ? 'this reader supports only dense tensors in state dicts'
    : 'only PyTorch tensor/state-dict globals are allowed';
}

/**
 * `BUILD` handler: only the attribute dict torch sets on a state dict (`_metadata`, module versions) is
 * accepted, and ignored because it carries no weights.
 */
export function torchBuild(target: unknown, state: unknown): void {
  const isStateDict = (v: unknown) => v === null || v instanceof Map;
  const ok =
    target instanceof Map &&
    (state instanceof Map || (Array.isArray(state) && state.length === 2 && state.every(isStateDict)));
  if (!ok) fail(`refusing BUILD of ${describePyValue(state)} on ${describePyValue(target)}`);
}

/** Storages by key, created from persistent ids; a key seen twice is the same storage (shared views). */
export class StorageTable {
  private readonly rootsByKey = new Map<string, StorageRoot>();
  private readonly views = new Map<string, StorageView>();

  /** The storages the pickle referenced, in first-seen order. */
  roots(): IterableIterator<StorageRoot> {
    return this.rootsByKey.values();
  }

  /** Looks up a root by key (legacy files list the keys again before the data). */
  root(key: string): StorageRoot | undefined {
    return this.rootsByKey.get(key);
  }

  /**
   * Resolves `('storage', storage_class, key, location, numel[, view_metadata])`: five fields in zip
   * files, six in legacy ones.
   */
  load(pid: unknown): StorageView {
    if (!Array.isArray(pid) || pid.length === 0)
      fail(`persistent id must be a tuple, got ${describePyValue(pid)}`);
    const typename = text(pid[0], 'persistent id type');
    if (typename === 'module') {
      fail(
        'the checkpoint pickles a whole nn.Module; only state dicts are supported (save model.state_dict())',
      );
    }
    if (typename !== 'storage') fail(`unknown persistent id type "${typename}"`);
    if (pid.length !== 5 && pid.length !== 6)
      fail(`storage persistent id has ${pid.length} fields, expected 5 or 6`);
    const marker = markerOf(pid[1]);
    if (marker?.kind !== 'storage-class') fail(`${describePyValue(pid[1])} is not a storage class`);
    const key = text(pid[2], 'storage key');
    text(pid[3], 'storage location');
    const numel = nonNegativeInt(pid[4], 'storage size');

    let root = this.rootsByKey.get(key);
    if (!root) {
      root = new StorageRoot(key, marker.dtype, numel);
      this.rootsByKey.set(key, root);
    }
    const viewMetadata = pid[5] ?? null;
    if (viewMetadata === null) return this.wholeRoot(root);

    // PyTorch < 0.4 could save a view of a storage: (view_key, offset, size), in elements.
    if (!Array.isArray(viewMetadata) || viewMetadata.length !== 3) {
      fail(`storage view metadata must be (key, offset, size), got ${describePyValue(viewMetadata)}`);
    }
    const viewKey = text(viewMetadata[0], 'storage view key');
    const cached = this.views.get(viewKey);
    if (cached) return cached;
    const offset = nonNegativeInt(viewMetadata[1], 'storage view offset');
    const size = nonNegativeInt(viewMetadata[2], 'storage view size');
    if (offset + size > root.numel) {
      fail(`storage view ${viewKey} (${offset}+${size}) exceeds storage ${key} of ${root.numel} elements`);
    }
    const item = root.dtype.itemSize;
    const view = new StorageView(root, root.dtype, offset * item, size * item);
    this.views.set(viewKey, view);
    return view;
  }

  private wholeRoot(root: StorageRoot): StorageView {
    const id = `\0root:${root.key}`;
    let view = this.views.get(id);
    if (!view) {
      view = new StorageView(root, root.dtype, 0, root.byteLength);
      this.views.set(id, view);
    }
    return view;
  }
}

/**
 * Unpickles the object pickle of a checkpoint (either container format) with the tensor allow-list, collecting
 * the storages its tensors reference; the container then attaches each storage's bytes.
 *
 * @throws CheckpointError for a refused global, persistent id or `BUILD`, or a corrupt pickle.
 */
export function unpickleTorchObject(
  bytes: Uint8Array,
  label: string,
  start?: number,
): UnpickleResult & { readonly storages: StorageTable } {
  const storages = new StorageTable();
  const result = unpickle(bytes, {
    globals: TORCH_GLOBALS,
    refusalReason: torchRefusalReason,
    persistentLoad: (pid) => storages.load(pid),
    build: torchBuild,
    label,
    ...(start === undefined ? {} : { start }),
  });
  return { ...result, storages };
}

/**
 * Gathers a tensor's elements, following its strides and storage offset, into a dense row-major array.
 *
 * @throws CheckpointError when the storage has no data or the view reaches outside it.
 */
export function materialize(name: string, tensor: TensorRef, fileLittleEndian: boolean): NamedTensor {
  const { storage, dtype, offset, shape, stride } = tensor;
  const rootBytes = storage.root.bytes;
  if (!rootBytes) fail(`tensor "${name}": storage "${storage.root.key}" has no data in the checkpoint`);
  if (storage.byteOffset + storage.byteLength > rootBytes.length) {
    fail(`tensor "${name}": storage "${storage.root.key}" is shorter than the pickle declares`);
  }
  const source = rootBytes.subarray(storage.byteOffset, storage.byteOffset + storage.byteLength);
  const item = dtype.itemSize;

  let numel = 1;
  for (const size of shape) numel *= size;
  let lastIndex = offset;
  for (let d = 0; d < shape.length; d++) if (shape[d]! > 0) lastIndex += (shape[d]! - 1) * stride[d]!;
  if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(lastIndex)) {
    fail(`tensor "${name}": shape [${shape.join(', ')}] is too large`);
  }
  if (numel > 0 && (lastIndex + 1) * item > source.length) {
    fail(
      `tensor "${name}": view (offset ${offset}, size [${shape.join(', ')}], stride [${stride.join(', ')}]) ` +
        `reaches element ${lastIndex} of a ${dtype.name} storage holding ${Math.floor(source.length / item)}`,
    );
  }

  // Only a stride-0 (broadcast) view can hold more elements than its storage. Capping those stops a tiny
  // hostile file from demanding gigabytes; real state dicts essentially never contain them.
  const storageElements = Math.floor(source.length / item);
  if (numel > storageElements && numel > MAX_BROADCAST_ELEMENTS) {
    fail(`tensor "${name}": broadcast view of ${numel} elements over ${storageElements} stored is too large`);
  }

  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = new Uint8Array(numel * item);
  } catch (error) {
    return fail(`tensor "${name}": cannot allocate ${numel * item} bytes (${String(error)})`);
  }
  if (numel > 0) gather(source, raw, item, offset, shape, stride, isContiguous(shape, stride));
  return {
    name,
    dtype: dtype.name,
    shape: Object.freeze([...shape]),
    data: decodeElements(dtype, raw, fileLittleEndian),
  };
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    // A dimension of size 1 is never stepped over, so its stride is irrelevant.
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

function gather(
  source: Uint8Array,
  out: Uint8Array,
  item: number,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
  contiguous: boolean,
): void {
  if (contiguous || shape.length === 0) {
    out.set(source.subarray(offset * item, offset * item + out.length));
    return;
  }
  const rank = shape.length;
  const inner = shape[rank - 1]!;
  const innerStep = stride[rank - 1]! * item;
  const counter = new Array<number>(rank).fill(0);
  let rowStart = offset * item;
  let o = 0;
  while (o < out.length) {
    for (let i = 0, p = rowStart; i < inner; i++, p += innerStep) {
      for (let b = 0; b < item; b++) out[o++] = source[p + b]!;
    }
    // Odometer over the outer dimensions.
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]!++;
      rowStart += stride[d]! * item;
      if (counter[d]! < shape[d]!) break;
      rowStart -= shape[d]! * stride[d]! * item;
      counter[d] = 0;
    }
  }
}

/**
 * Picks the state dict out of an unpickled top-level object and gathers its tensors.
 *
 * Accepts a dict (or `OrderedDict`) of tensors, or a dict whose `state_dict` entry is one. Entries whose
 * value is not a tensor (plain ints, strings, nested dicts) are skipped.
 *
 * @param maxBytes - the most the gathered tensors may take together, checked before any is allocated.
 * @throws CheckpointError when there is no state dict to be found, or its tensors exceed `maxBytes`.
 */
export function toStateDict(top: unknown, fileLittleEndian: boolean, maxBytes = Infinity): StateDict {
  if (top instanceof TensorRef) fail('the checkpoint holds a single tensor, not a state dict');
  if (!(top instanceof Map)) fail(`expected a state dict at the top level, got ${describePyValue(top)}`);
  const nested = top.get('state_dict');
  const dict: Map<unknown, unknown> = nested instanceof Map ? nested : top;

  // The budget covers what materializing every tensor would allocate, summed before anything is: a view
  // is counted at its own size, so a stride-0 (broadcast) view of one stored element counts as the whole
  // tensor it expands to, and many views of one storage count once each.
  let total = 0;
  for (const value of dict.values()) {
    if (!(value instanceof TensorRef)) continue;
    let numel = 1;
    for (const size of value.shape) numel *= size;
    total += numel * value.dtype.itemSize;
  }
  if (!(total <= maxBytes)) {
    fail(
      `the tensors would take ${total} bytes once materialized, over the ${maxBytes}-byte budget ` +
        '(readCheckpoint option maxBytes; broadcast views count at their full size)',
    );
  }

  const out = new Map<string, NamedTensor>();
  for (const [key, value] of dict) {
    if (!(value instanceof TensorRef)) continue;
    if (typeof key !== 'string') fail(`state dict key must be a string, got ${describePyValue(key)}`);
    out.set(key, materialize(key, value, fileLittleEndian));
  }
  if (out.size === 0 && dict.size > 0) {
    const keys = [...dict.keys()].slice(0, 10).map((k) => (typeof k === 'string' ? k : describePyValue(k)));
    fail(
      `no tensors at the top level of the checkpoint (keys: ${keys.join(', ')}${dict.size > 10 ? ', ...' : ''})`,
    );
  }
  return out;
}
