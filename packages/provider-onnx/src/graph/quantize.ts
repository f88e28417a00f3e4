/**
 * Static int8 quantization of the graphs this package builds, as onnxruntime's QDQ format: every activation
 * around a convolution passes through QuantizeLinear → DequantizeLinear (uint8, asymmetric, one scale per
 * tensor, from ranges measured on calibration inputs) and every convolution weight is stored as int8
 * (symmetric, 7 bits, one scale per output channel, axis 0) behind a DequantizeLinear, its bias as int32 with scale
 * input scale × weight scale. onnxruntime's graph optimiser turns each DQ → Conv → Q group into QLinearConv
 * (DQ → Add → Q into QLinearAdd, and so on) and runs its int8 kernels (VNNI/AMX where the CPU has them); the
 * model stays a plain opset-17 graph that any ONNX runtime can run in float.
 *
 * This follows what onnxruntime's own `quantize_static` writes in QDQ format (the Python tool is not used, so
 * building stays JavaScript-only): uint8 activations × int8 weights is the pairing of the x86 int8
 * instructions (`vpdpbusd`); a ReLU right after a quantized Conv/Add is dropped because a uint8 zero point
 * of 0 clips at zero already; MaxPool and Pad outputs share their input's parameters so onnxruntime can run
 * them on uint8 and drop their Q/DQ pair. The fully connected head, global pooling and normalisation stay
 * float: they are a negligible share of the work and the most sensitive to rounding.
 */
import { GraphBuildError } from '../errors.js';
import {
  decodeModel,
  encodeModel,
  OnnxAttributeType,
  OnnxDataType,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from './onnx-schema.js';

/** The observed range of one activation tensor over the calibration inputs. */
export interface ActivationRange {
  min: number;
  max: number;
}

/** Ops whose float inputs and outputs are quantized; onnxruntime has int8 implementations of each. */
const QUANTIZED_OPS: ReadonlySet<string> = new Set([
  'Conv',
  'Add',
  'Concat',
  'MaxPool',
  'AveragePool',
  'Pad',
  'Relu',
]);
/** Ops whose output keeps the input's quantization parameters (their output range lies within the input's). */
const SHARED_PARAMS_OPS: ReadonlySet<string> = new Set(['MaxPool', 'Pad']);
/** Producers whose following ReLU is dropped: their output is quantized with zero point 0 instead. */
const RELU_FUSING_OPS: ReadonlySet<string> = new Set(['Conv', 'Add']);

const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;

/** Graph analysis shared by calibration and quantization. */
interface Analysis {
  readonly initializers: ReadonlyMap<string, OnnxTensor>;
  readonly consumers: ReadonlyMap<string, OnnxNode[]>;
  /** Float activations (graph inputs and node outputs, not initializers) that get a Q/DQ pair. */
  readonly quantized: ReadonlySet<string>;
}

function analyse(nodes: readonly OnnxNode[], model: OnnxModel): Analysis {
  const initializers = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const consumers = new Map<string, OnnxNode[]>();
  for (const node of nodes) {
    for (const input of node.input) {
      if (!consumers.has(input)) consumers.set(input, []);
      consumers.get(input)!.push(node);
    }
  }
  const graphOutputs = new Set(model.graph.output.map((o) => o.name));
  const quantized = new Set<string>();
  const consider = (name: string): void => {
    if (name === '' || initializers.has(name) || graphOutputs.has(name)) return;
    quantized.add(name);
  };
  for (const node of nodes) {
    if (!QUANTIZED_OPS.has(node.opType)) continue;
    // Only data inputs: Conv's weight and bias, Pad's amounts are initializers and handled apart.
    for (const input of node.opType === 'Pad' ? node.input.slice(0, 1) : node.input) consider(input);
    for (const output of node.output) consider(output);
  }
  return { initializers, consumers, quantized };
}

/**
 * The ReLUs that quantization drops, by input: a ReLU whose input comes from a Conv or Add and is used by
 * nothing else. The producer then writes the ReLU's output name directly.
 */
function fusedRelus(model: OnnxModel): Map<string, OnnxNode> {
  const producers = new Map<string, OnnxNode>();
  const uses = new Map<string, number>();
  for (const node of model.graph.node) {
    for (const o of node.output) producers.set(o, node);
    for (const i of node.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  }
  const graphOutputs = new Set(model.graph.output.map((o) => o.name));
  const fused = new Map<string, OnnxNode>();
  for (const node of model.graph.node) {
    if (node.opType !== 'Relu') continue;
    const input = node.input[0]!;
    const producer = producers.get(input);
    if (producer && RELU_FUSING_OPS.has(producer.opType) && uses.get(input) === 1 && !graphOutputs.has(input))
      fused.set(input, node);
  }
  return fused;
}

/**
 * The float graph with every activation that {@link quantizeModel} will quantize added as a graph output,
 * for measuring ranges. All those activations are 4-D (`[N, C, H, W]`) in the networks built here; each gets
 * its own symbolic dims.
 *
 * @returns the model bytes and the names of the added outputs.
 */
export function calibrationModel(bytes: Uint8Array): { bytes: Uint8Array; tensors: string[] } {
  const model = decodeModel(bytes);
  const { quantized } = analyse(model.graph.node, model);
  const inputs = new Set(model.graph.input.map((i) => i.name));
  const tensors = [...quantized].filter((name) => !inputs.has(name));
  model.graph.output = [
    ...model.graph.output,
    ...tensors.map((name, i) => ({
      name,
      type: {
        tensorType: {
          elemType: OnnxDataType.FLOAT,
          shape: { dim: ['n', 'c', 'h', 'w'].map((d) => ({ dimParam: `q${i}_${d}` })) },
        },
      },
    })),
  ];
  return { bytes: encodeModel(model), tensors };
}

/** Widens `ranges[name]` to cover `data`. */
export function observeRange(ranges: Map<string, ActivationRange>, name: string, data: Float32Array): void {
  let { min, max } = ranges.get(name) ?? { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  ranges.set(name, { min, max });
}

/** uint8 scale and zero point covering `range` (widened to include 0, as QuantizeLinear needs 0 exact). */
export function activationParams(range: ActivationRange): { scale: number; zeroPoint: number } {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  if (!(max > min)) return { scale: 1, zeroPoint: 0 };
  const scale = (max - min) / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

/**
 * The largest weight magnitude: 7 bits, not 8 (onnxruntime's "reduce range"). On x86 CPUs without VNNI (AVX2,
 * and AVX-512 before Cascade Lake / Zen 4), onnxruntime's uint8 × int8 kernels add pairs of products in 16
 * bits with saturation (`vpmaddubsw`): 255 · 127 · 2 overflows it and the result is silently wrong; with
 * |q| ≤ 63, 255 · 63 · 2 = 32130 fits. Measured on an AVX2 EPYC (Zen 1): a small residual net's worst error
 * was 10× the three quantization steps it keeps to at 7 bits. VNNI CPUs add in 32 bits and would not need it,
 * but a graph is built once and run on whatever CPU a deployment lands on (a Lambda tree built on one machine
 * runs on another), so one graph that is right everywhere.
 */
export const WEIGHT_QMAX = 63;

/**
 * Per-output-channel symmetric int8 weights: `scale[o] = max|W[o]| / WEIGHT_QMAX`, `q = round(W / scale)`, so
 * `q ∈ [−63, 63]` (see {@link WEIGHT_QMAX}).
 */
export function quantizeWeightsPerChannel(
  data: Float32Array,
  outChannels: number,
): { values: Int8Array; scales: Float32Array } {
  const per = data.length / outChannels;
  const values = new Int8Array(data.length);
  const scales = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    let absMax = 0;
    for (let i = o * per; i < (o + 1) * per; i++) absMax = Math.max(absMax, Math.abs(data[i]!));
    // An all-zero channel quantizes to zeros with any scale; 1 keeps the scale finite and positive.
    const scale = absMax > 0 ? absMax / WEIGHT_QMAX : 1;
    // Stored as float32 and used from there, so the integers are rounded against the scale the runtime sees.
    scales[o] = scale;
    const s = scales[o]!;
    for (let i = o * per; i < (o + 1) * per; i++) values[i] = Math.round(data[i]! / s);
  }
  return { values, scales };
}

const floatData = (t: OnnxTensor): Float32Array => {
  if (t.dataType !== OnnxDataType.FLOAT) throw new GraphBuildError(`quantize: "${t.name}" is not float32`);
  // Copied (a Buffer's slice() would be a view): decoded raw_data may be unaligned for a Float32Array.
  const bytes = new Uint8Array(t.rawData);
  return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
};

const bytesOf = (a: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Rewrites a float model built by this package into its QDQ int8 form (see the module comment).
 *
 * @param bytes - the float model (e.g. from {@link buildInceptionResnetV1}).
 * @param ranges - each quantized activation's range, from running {@link calibrationModel}'s outputs on
 *   calibration inputs (see {@link calibrateRanges}), plus the graph input's.
 * @throws GraphBuildError when an activation to quantize has no range.
 */
export function quantizeModel(bytes: Uint8Array, ranges: ReadonlyMap<string, ActivationRange>): Uint8Array {
  const model = decodeModel(bytes);
  const fused = fusedRelus(model);
  const fusedOutputs = new Set([...fused.values()].map((r) => r.output[0]!));
  // Drop the fused ReLUs and let their producers write the ReLU's output name.
  const nodes: OnnxNode[] = [];
  for (const node of model.graph.node) {
    if (node.opType === 'Relu' && fused.has(node.input[0]!) && fused.get(node.input[0]!) === node) continue;
    const output = node.output.map((o) => fused.get(o)?.output[0] ?? o);
    nodes.push({ ...node, output });
  }
  const { initializers, consumers, quantized } = analyse(nodes, model);

  const newInitializers: OnnxTensor[] = [];
  const usedInitializers = new Set<string>();
  const addInitializer = (name: string, dataType: number, dims: number[], data: Uint8Array): string => {
    newInitializers.push({ name, dims, dataType, rawData: data });
    return name;
  };
  /** A tensor's quantization parameters: initializer names, and the scale as float32 for the biases. */
  type Params = { scale: string; zeroPoint: string; scaleValue: number };
  const params = new Map<string, Params>();
  const producers = new Map<string, OnnxNode>();
  for (const node of nodes) for (const o of node.output) producers.set(o, node);
  const paramsOf = (tensor: string): Params => {
    let p = params.get(tensor);
    if (p) return p;
    const producer = producers.get(tensor);
    if (producer && SHARED_PARAMS_OPS.has(producer.opType) && quantized.has(producer.input[0]!)) {
      p = paramsOf(producer.input[0]!);
    } else {
      const range = ranges.get(tensor);
      if (!range) throw new GraphBuildError(`quantize: no calibration range for "${tensor}"`);
      // A fused ReLU's output is non-negative; its range (zero point 0) is what clips.
      const bounded = fusedOutputs.has(tensor) ? { min: 0, max: range.max } : range;
      const { scale, zeroPoint } = activationParams(bounded);
      const scaleValue = Math.fround(scale);
      p = {
        scale: addInitializer(`${tensor}.q_scale`, OnnxDataType.FLOAT, [], bytesOf(Float32Array.of(scale))),
        zeroPoint: addInitializer(`${tensor}.q_zero_point`, UINT8, [], Uint8Array.of(zeroPoint)),
        scaleValue,
      };
    }
    params.set(tensor, p);
    return p;
  };

  const out: OnnxNode[] = [];
  const quantize = (tensor: string): void => {
    const p = paramsOf(tensor);
    out.push({
      name: `${tensor}/QuantizeLinear`,
      opType: 'QuantizeLinear',
      input: [tensor, p.scale, p.zeroPoint],
      output: [`${tensor}.q`],
      attribute: [],
    });
  };
  let dqCount = 0;
  const dequantize = (tensor: string): string => {
    // One DequantizeLinear per consumer: onnxruntime's QDQ fusions want a DQ that feeds a single node.
    const p = paramsOf(tensor);
    const output = `${tensor}.dq${dqCount++}`;
    out.push({
      name: `${output}/DequantizeLinear`,
      opType: 'DequantizeLinear',
      input: [`${tensor}.q`, p.scale, p.zeroPoint],
      output: [output],
      attribute: [],
    });
    return output;
  };
  const axis0 = [{ name: 'axis', type: OnnxAttributeType.INT, i: 0 }];

  for (const input of model.graph.input) if (quantized.has(input.name)) quantize(input.name);
  for (const node of nodes) {
    const inputs = node.input.map((name) => (quantized.has(name) ? dequantize(name) : name));
    if (node.opType === 'Conv') {
      const weight = initializers.get(node.input[1]!);
      if (!weight || !quantized.has(node.input[0]!))
        throw new GraphBuildError(
          `quantize: Conv "${node.name}" needs a quantized input and a constant weight`,
        );
      const outChannels = weight.dims[0]!;
      const { values, scales } = quantizeWeightsPerChannel(floatData(weight), outChannels);
      const w = addInitializer(`${weight.name}.q`, INT8, weight.dims, bytesOf(values));
      const ws = addInitializer(`${weight.name}.q_scale`, OnnxDataType.FLOAT, [outChannels], bytesOf(scales));
      const wz = addInitializer(
        `${weight.name}.q_zero_point`,
        INT8,
        [outChannels],
        new Uint8Array(outChannels),
      );
      usedInitializers.add(weight.name);
      inputs[1] = `${weight.name}.dq`;
      out.push({
        name: `${weight.name}/DequantizeLinear`,
        opType: 'DequantizeLinear',
        input: [w, ws, wz],
        output: [inputs[1]],
        attribute: axis0,
      });
      const bias = node.input[2] ? initializers.get(node.input[2]) : undefined;
      if (bias) {
        // int32 bias with scale s_x · s_w[o] and zero point 0, as QLinearConv adds it to the int32 sums.
        const inputScale = paramsOf(node.input[0]!).scaleValue;
        const b = floatData(bias);
        const bScales = new Float32Array(outChannels);
        const bValues = new Int32Array(outChannels);
        for (let o = 0; o < outChannels; o++) {
          bScales[o] = inputScale * scales[o]!;
          bValues[o] = Math.round(b[o]! / bScales[o]!);
        }
        const bq = addInitializer(`${bias.name}.q`, INT32, [outChannels], bytesOf(bValues));
        const bs = addInitializer(
          `${bias.name}.q_scale`,
          OnnxDataType.FLOAT,
          [outChannels],
          bytesOf(bScales),
        );
        usedInitializers.add(bias.name);
        inputs[2] = `${bias.name}.dq`;
        out.push({
          name: `${bias.name}/DequantizeLinear`,
          opType: 'DequantizeLinear',
          input: [bq, bs],
          output: [inputs[2]],
          attribute: axis0,
        });
      }
    }
    out.push({ ...node, input: inputs });
    for (const o of node.output) if (quantized.has(o) && (consumers.get(o)?.length ?? 0) > 0) quantize(o);
  }

  model.graph.node = out;
  model.graph.initializer = [
    ...model.graph.initializer.filter((t) => !usedInitializers.has(t.name)),
    ...newInitializers,
  ];
  model.docString = `${model.docString ?? ''} (int8 QDQ: uint8 activations, per-channel int8 weights)`.trim();
  model.metadataProps = [...model.metadataProps, { key: 'facerec_precision', value: 'int8' }];
  return encodeModel(model);
}
