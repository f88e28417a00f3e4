/**
 * Folding inference-time constants into the layer before them, so a runtime only convolves and adds. Every
 * provider takes its folded weights from here: the arithmetic (float64, rounded once to float32) is then the
 * same on every runtime, which is what lets the onnx and tfjs providers agree to the last bit on weights.
 */
import type { BatchNormParams, FloatTensor } from './reader.js';

/** A layer's weight and bias after folding, in PyTorch layout (`[out, …]`). */
export interface FoldedWeights {
  readonly weight: FloatTensor;
  readonly bias: FloatTensor;
}

/**
 * Folds an inference-mode batch norm into the layer before it (a convolution `[out, ...]` or a linear layer
 * `[out, in]`): with k = γ/√(var+ε), W' = W·k per output channel and b' = β − μ·k (+ b·k when the layer had a
 * bias). Arithmetic is done in float64 and rounded once to float32.
 *
 * @throws RangeError when a batch-norm tensor (or the layer's bias) does not hold one value per output channel.
 * @example
 * ```ts
 * const conv = foldBatchNorm({ weight: r.take('conv.weight', [32, 3, 3, 3]) }, r.takeBatchNorm('bn', 32, 1e-3));
 * ```
 */
export function foldBatchNorm(
  layer: { readonly weight: FloatTensor; readonly bias?: FloatTensor },
  bn: BatchNormParams,
): FoldedWeights {
  const out = layer.weight.dims[0]!;
  for (const [what, t] of [
    ['weight', bn.weight],
    ['bias', bn.bias],
    ['running_mean', bn.runningMean],
    ['running_var', bn.runningVar],
    ...(layer.bias ? [['layer bias', layer.bias] as const] : []),
  ] as const) {
    if (t.data.length !== out) {
      throw new RangeError(`foldBatchNorm: ${what} has ${t.data.length} values, expected ${out}`);
    }
  }
  const perChannel = layer.weight.data.length / out;
  const weight = new Float32Array(layer.weight.data.length);
  const bias = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const k = bn.weight.data[o]! / Math.sqrt(bn.runningVar.data[o]! + bn.eps);
    const base = o * perChannel;
    for (let j = 0; j < perChannel; j++) weight[base + j] = layer.weight.data[base + j]! * k;
    const b = layer.bias ? layer.bias.data[o]! : 0;
    bias[o] = bn.bias.data[o]! + (b - bn.runningMean.data[o]!) * k;
  }
  return { weight: { dims: layer.weight.dims, data: weight }, bias: { dims: [out], data: bias } };
}

/** Multiplies every element by `factor` (float64 product, rounded once), e.g. to fold a residual scale. */
export function scaleTensor(t: FloatTensor, factor: number): FloatTensor {
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) data[i] = t.data[i]! * factor;
  return { dims: t.dims, data };
}
