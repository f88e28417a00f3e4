import { type BatchNormParams, type FloatTensor, foldBatchNorm } from '@facerec/framework/internal';
import { GraphBuildError } from '../errors.js';
import {
  encodeModel,
  type OnnxAttribute,
  OnnxAttributeType,
  OnnxDataType,
  type OnnxDimension,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from './onnx-schema.js';

/** ONNX opset the builder targets; every op and attribute here follows that opset's definitions. */
export const ONNX_OPSET = 17;
/** ONNX IR version written into models (IR 8 is the one that accompanies opset 17). */
export const ONNX_IR_VERSION = 8;
/** `producer_name` of every model this package writes. */
export const PRODUCER_NAME = 'facerec';

/** A tensor dimension: a fixed size, or a symbolic name such as `'N'` that is bound at run time. */
export type Dim = number | string;

/** A typed node attribute; ONNX distinguishes ints from floats, so each value says which it is. */
export type Attribute =
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'string'; readonly value: string };

/** Constructors for {@link Attribute} values: `attr.ints([1, 1])`, `attr.float(1e-5)`. */
export const attr = Object.freeze({
  /** An integer attribute. */
  int: (value: number): Attribute => ({ type: 'int', value }),
  /** A float attribute. */
  float: (value: number): Attribute => ({ type: 'float', value }),
  /** A list-of-integers attribute. */
  ints: (value: readonly number[]): Attribute => ({ type: 'ints', value }),
  /** A list-of-floats attribute. */
  floats: (value: readonly number[]): Attribute => ({ type: 'floats', value }),
  /** A string attribute. */
  string: (value: string): Attribute => ({ type: 'string', value }),
});

/** Options of {@link GraphBuilder}. */
export interface GraphBuilderOptions {
  /** Graph name, e.g. `pnet`. */
  readonly name: string;
  /** Free text stored as the model's doc_string. */
  readonly docString?: string;
  /**
   * Provenance stored as `metadata_props` (e.g. `{ weights_sha256: '…', weights_url: '…' }`); onnxruntime
   * exposes these as custom metadata.
   */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Version string stored as `producer_version`. */
  readonly producerVersion?: string;
}

/** Options of {@link GraphBuilder.conv}. */
export interface ConvOptions {
  /** Weight `[out, in / group, kh, kw]`. The kernel shape is taken from it. */
  readonly weight: FloatTensor;
  /** Bias `[out]`, if the convolution has one. */
  readonly bias?: FloatTensor;
  /** `[sh, sw]`; default `[1, 1]`. */
  readonly strides?: readonly [number, number];
  /** Symmetric padding `[ph, pw]` as PyTorch's `padding=(ph, pw)`; default `[0, 0]`. */
  readonly padding?: readonly [number, number];
  /** Name of the output value; default a generated one. */
  readonly output?: string;
}

/** Options of {@link GraphBuilder.maxPool}. */
export interface MaxPoolOptions {
  /** `[kh, kw]`. */
  readonly kernel: readonly [number, number];
  /** `[sh, sw]`; PyTorch's default is the kernel size, but here it must be given. */
  readonly strides: readonly [number, number];
  /** PyTorch `ceil_mode`: keep a last, partial window. */
  readonly ceilMode?: boolean;
  /** Name of the output value. */
  readonly output?: string;
}

/** Options of {@link GraphBuilder.gemm}. */
export interface LinearOptions {
  /** Weight `[out, in]`, PyTorch `nn.Linear` layout (used with transB = 1, so no transposed copy is made). */
  readonly weight: FloatTensor;
  /** Bias `[out]`. */
  readonly bias?: FloatTensor;
  /** Name of the output value. */
  readonly output?: string;
}

const sanitize = (name: string): string => name.replace(/[^A-Za-z0-9_.:/-]/g, '_');

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function float32Bytes(data: Float32Array): Uint8Array {
  // Models reach ~100 MB, and every fresh copy of that size costs real time (page faults, GC), so on the
  // (near-universal) little-endian host the array's own bytes are used as raw_data without a copy.
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  // DataView writes little-endian explicitly, which raw_data requires whatever the host byte order.
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return bytes;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, BigInt(values[i]!), true);
  return bytes;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function toDimensions(dims: readonly Dim[]): OnnxDimension[] {
  return dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
}

function toAttribute(name: string, a: Attribute): OnnxAttribute {
  switch (a.type) {
    case 'int':
      return { name, type: OnnxAttributeType.INT, i: a.value };
    case 'float':
      return { name, type: OnnxAttributeType.FLOAT, f: a.value };
    case 'ints':
      return { name, type: OnnxAttributeType.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: OnnxAttributeType.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: OnnxAttributeType.STRING, s: new TextEncoder().encode(a.value) };
  }
}

/**
 * Builds an ONNX model (opset {@link ONNX_OPSET}, IR {@link ONNX_IR_VERSION}) node by node. Value, node and
 * initializer names are made unique, so callers can reuse readable prefixes freely. Layer helpers mirror the
 * PyTorch modules they replace and take PyTorch-layout weights.
 *
 * @example
 * ```ts
 * const g = new GraphBuilder({ name: 'tiny' });
 * const x = g.input('input', ['N', 3, 'H', 'W']);
 * const y = g.relu(g.conv(x, { weight, bias }));
 * g.output(y, 'out', ['N', 8, 'h', 'w']);
 * const bytes = g.toBytes();
 * ```
 */
export class GraphBuilder {
  readonly #options: GraphBuilderOptions;
  readonly #nodes: OnnxNode[] = [];
  readonly #initializers: OnnxTensor[] = [];
  readonly #inputs: OnnxValueInfo[] = [];
  readonly #outputs: OnnxValueInfo[] = [];
  readonly #names = new Set<string>();
  readonly #nodeNames = new Set<string>();
  readonly #counters = new Map<string, number>();
  readonly #scalars = new Map<number, string>();

  constructor(options: GraphBuilderOptions) {
    this.#options = options;
  }

  /** A value name not yet used in this graph, derived from `base`. */
  uniqueName(base: string): string {
    return this.#claim(this.#names, sanitize(base));
  }

  /** Declares a float32 graph input with the given (possibly symbolic) dims; returns its value name. */
  input(name: string, dims: readonly Dim[]): string {
    if (this.#names.has(name))
      throw new GraphBuildError(`GraphBuilder: value name "${name}" is already used`);
    this.#names.add(name);
    this.#inputs.push(this.#valueInfo(name, dims));
    return name;
  }

  /**
   * Declares `value` as a float32 graph output called `name`. When the value has another name, an Identity
   * node renames it (onnxruntime removes it when optimising); pass `output` to the producing helper to avoid it.
   */
  output(value: string, name: string, dims: readonly Dim[]): void {
    let produced = value;
    if (value !== name) {
      if (this.#names.has(name))
        throw new GraphBuildError(`GraphBuilder: value name "${name}" is already used`);
      produced = this.node('Identity', [value], {}, { output: name });
    }
    this.#outputs.push(this.#valueInfo(produced, dims));
  }

  /**
   * Adds a float32 initializer (stored as little-endian raw_data); returns its (unique) name. The data is
   * referenced, not copied, until {@link GraphBuilder.toBytes}: do not modify it before then.
   */
  initializer(name: string, tensor: FloatTensor): string {
    if (product(tensor.dims) !== tensor.data.length) {
      throw new RangeError(
        `GraphBuilder: initializer "${name}" has ${tensor.data.length} values for dims [${tensor.dims.join(', ')}]`,
      );
    }
    const unique = this.uniqueName(name);
    this.#initializers.push({
      name: unique,
      dims: [...tensor.dims],
      dataType: OnnxDataType.FLOAT,
      rawData: float32Bytes(tensor.data),
    });
    return unique;
  }

  /** Adds an int64 initializer (shapes for Reshape, axes, ...); returns its (unique) name. */
  int64Initializer(name: string, dims: readonly number[], values: readonly number[]): string {
    if (product(dims) !== values.length) {
      throw new RangeError(
        `GraphBuilder: initializer "${name}" has ${values.length} values for dims [${dims}]`,
      );
    }
    const unique = this.uniqueName(name);
    this.#initializers.push({
      name: unique,
      dims: [...dims],
      dataType: OnnxDataType.INT64,
      rawData: int64Bytes(values),
    });
    return unique;
  }

  /** A float32 scalar initializer; equal values share one initializer. */
  scalar(value: number): string {
    const existing = this.#scalars.get(value);
    if (existing) return existing;
    const name = this.initializer('scalar', { dims: [], data: Float32Array.of(value) });
    this.#scalars.set(value, name);
    return name;
  }

  /**
   * Appends a node with one output and returns the output's value name. Nodes must be added in topological
   * order (each input already produced), which ONNX requires of the node list.
   */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, Attribute>> = {},
    options: { readonly output?: string; readonly name?: string } = {},
  ): string {
    let output: string;
    if (options.output !== undefined) {
      if (this.#names.has(options.output)) {
        throw new GraphBuildError(`GraphBuilder: value name "${options.output}" is already used`);
      }
      output = options.output;
      this.#names.add(output);
    } else {
      output = this.uniqueName(`${options.name ?? opType}_out`);
    }
    this.#nodes.push({
      name: this.#claim(this.#nodeNames, sanitize(options.name ?? opType)),
      opType,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attributes).map(([k, a]) => toAttribute(k, a)),
    });
    return output;
  }

  /** PyTorch `nn.Conv2d` (groups = 1, dilation = 1) with its weights. */
  conv(x: string, options: ConvOptions, name = 'conv'): string {
    const { weight, bias } = options;
    if (weight.dims.length !== 4)
      throw new RangeError(`GraphBuilder.conv: weight must be 4-D, got [${weight.dims}]`);
    const [ph, pw] = options.padding ?? [0, 0];
    const inputs = [x, this.initializer(`${name}.weight`, weight)];
    if (bias) inputs.push(this.initializer(`${name}.bias`, bias));
    return this.node(
      'Conv',
      inputs,
      {
        kernel_shape: attr.ints(weight.dims.slice(2)),
        strides: attr.ints(options.strides ?? [1, 1]),
        pads: attr.ints([ph, pw, ph, pw]),
        dilations: attr.ints([1, 1]),
        group: attr.int(1),
      },
      { name, ...(options.output === undefined ? {} : { output: options.output }) },
    );
  }

  /**
   * A convolution followed by an inference-mode batch norm, emitted as one Conv with the norm folded into
   * its weights (see {@link foldBatchNorm}).
   */
  convBatchNorm(
    x: string,
    options: ConvOptions & { readonly batchNorm: BatchNormParams },
    name = 'conv',
  ): string {
    const folded = foldBatchNorm(options, options.batchNorm);
    return this.conv(x, { ...options, weight: folded.weight, bias: folded.bias }, name);
  }

  /**
   * PyTorch `nn.PReLU(C)` applied to an `[N, C, H, W]` (`rank` 4) or `[N, C]` (`rank` 2) tensor. ONNX PRelu
   * broadcasts the slope from the right, so a per-channel slope is stored as `[C, 1, 1]` for 4-D input.
   */
  prelu(x: string, slope: FloatTensor, rank: 2 | 4, name = 'prelu'): string {
    const c = slope.data.length;
    const dims = rank === 4 ? [c, 1, 1] : [c];
    return this.node(
      'PRelu',
      [x, this.initializer(`${name}.weight`, { dims, data: slope.data })],
      {},
      { name },
    );
  }

  /** PyTorch `nn.MaxPool2d(kernel, stride, ceil_mode=…)` without padding. */
  maxPool(x: string, options: MaxPoolOptions, name = 'maxpool'): string {
    return this.node(
      'MaxPool',
      [x],
      {
        kernel_shape: attr.ints(options.kernel),
        strides: attr.ints(options.strides),
        pads: attr.ints([0, 0, 0, 0]),
        ceil_mode: attr.int(options.ceilMode ? 1 : 0),
      },
      { name, ...(options.output === undefined ? {} : { output: options.output }) },
    );
  }

  /** PyTorch `nn.Linear` on `[N, in]`: Gemm with transB = 1 so the `[out, in]` weight is used as stored. */
  gemm(x: string, options: LinearOptions, name = 'linear'): string {
    const inputs = [x, this.initializer(`${name}.weight`, options.weight)];
    if (options.bias) inputs.push(this.initializer(`${name}.bias`, options.bias));
    return this.node(
      'Gemm',
      inputs,
      { alpha: attr.float(1), beta: attr.float(1), transA: attr.int(0), transB: attr.int(1) },
      { name, ...(options.output === undefined ? {} : { output: options.output }) },
    );
  }

  /** Softmax along one axis (opset ≥ 13 semantics: only that axis is normalised, like `torch.softmax(dim)`). */
  softmax(x: string, axis: number, output?: string): string {
    return this.node('Softmax', [x], { axis: attr.int(axis) }, output === undefined ? {} : { output });
  }

  /** Permutes dimensions, like `tensor.permute(...perm)`. */
  transpose(x: string, perm: readonly number[]): string {
    return this.node('Transpose', [x], { perm: attr.ints(perm) });
  }

  /** Flattens to 2-D `[d0·…·d(axis−1), rest]`; with axis 1 this is `x.view(N, -1)` for any batch size. */
  flatten(x: string, axis = 1): string {
    return this.node('Flatten', [x], { axis: attr.int(axis) });
  }

  /** Reshape to `shape` (0 copies the input dim, −1 is inferred), like `tensor.reshape`. */
  reshape(x: string, shape: readonly number[]): string {
    return this.node('Reshape', [x, this.int64Initializer('shape', [shape.length], shape)]);
  }

  /** ReLU. */
  relu(x: string, output?: string): string {
    return this.node('Relu', [x], {}, output === undefined ? {} : { output });
  }

  /** Elementwise sum (with numpy broadcasting). */
  add(a: string, b: string, output?: string): string {
    return this.node('Add', [a, b], {}, output === undefined ? {} : { output });
  }

  /** Multiplies by a constant scalar. */
  mulScalar(x: string, factor: number, output?: string): string {
    return this.node('Mul', [x, this.scalar(factor)], {}, output === undefined ? {} : { output });
  }

  /**
   * Multiplies each channel of an `[N, C, H, W]` tensor by its own constant (`factors` has C values), like
   * `x * factors.view(C, 1, 1)`.
   */
  mulChannels(x: string, factors: Float32Array, name = 'mul'): string {
    const c = factors.length;
    return this.node(
      'Mul',
      [x, this.initializer(`${name}.factors`, { dims: [c, 1, 1], data: factors })],
      {},
      { name },
    );
  }

  /** Concatenates along `axis`, like `torch.cat(values, axis)`. */
  concat(values: readonly string[], axis: number): string {
    return this.node('Concat', values, { axis: attr.int(axis) });
  }

  /** Averages each channel over all spatial positions (`nn.AdaptiveAvgPool2d(1)`), keeping `[N, C, 1, 1]`. */
  globalAveragePool(x: string): string {
    return this.node('GlobalAveragePool', [x]);
  }

  /**
   * `torch.nn.functional.normalize(x, p=2, dim=axis, eps)`: x / max(‖x‖₂, eps). Built from ReduceL2, Max and
   * Div because LpNormalization has no epsilon and would turn an all-zero row into NaNs.
   */
  l2Normalize(
    x: string,
    options: { readonly axis?: number; readonly eps?: number; readonly output?: string } = {},
  ): string {
    // Opset 17 still takes ReduceL2's axes as an attribute; opset 18 moved them to an input.
    const norm = this.node('ReduceL2', [x], { axes: attr.ints([options.axis ?? 1]), keepdims: attr.int(1) });
    const clamped = this.node('Max', [norm, this.scalar(options.eps ?? 1e-12)]);
    return this.node('Div', [x, clamped], {}, options.output === undefined ? {} : { output: options.output });
  }

  /** The model as a plain object (what {@link GraphBuilder.toBytes} serialises). */
  toModel(): OnnxModel {
    const { name, docString, metadata, producerVersion } = this.#options;
    if (this.#outputs.length === 0) throw new GraphBuildError(`GraphBuilder: graph "${name}" has no outputs`);
    return {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: PRODUCER_NAME,
      ...(producerVersion === undefined ? {} : { producerVersion }),
      ...(docString === undefined ? {} : { docString }),
      graph: {
        name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
      metadataProps: Object.entries(metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  /**
   * Serialises the model to ONNX protobuf bytes, ready for `InferenceSession.create` or a file; see
   * {@link encodeModel} (the bytes may be a view over a larger buffer).
   */
  toBytes(): Uint8Array {
    return encodeModel(this.toModel());
  }

  #valueInfo(name: string, dims: readonly Dim[]): OnnxValueInfo {
    return {
      name,
      type: { tensorType: { elemType: OnnxDataType.FLOAT, shape: { dim: toDimensions(dims) } } },
    };
  }

  #claim(taken: Set<string>, base: string): string {
    let name = base;
    if (taken.has(name)) {
      let n = this.#counters.get(base) ?? 1;
      while (taken.has(`${base}_${n}`)) n++;
      this.#counters.set(base, n + 1);
      name = `${base}_${n}`;
    }
    taken.add(name);
    return name;
  }
}
