/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) as TensorFlow.js ops, built from its
 * state dict. The blocks, module names, kernel sizes, paddings, residual scales and batch-norm eps are the
 * framework's `INCEPTION_RESNET_V1_BLOCKS` and `INCEPTION_RESNET_V1_HEAD`, from which the onnx provider
 * builds its graph too. Every batch norm is folded into the layer before it and each block's residual scale into its
 * 1×1 up-projection, so a forward pass is only fused conv+ReLU, add, concat, max-pool and the head.
 */
import type { StateDict } from '@facerec/framework';
import {
  INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  INCEPTION_RESNET_V1_BLOCKS,
  INCEPTION_RESNET_V1_HEAD,
  type InceptionResnetV1Block,
  type InceptionResnetV1Branch,
  type InceptionResnetV1Conv,
  type InceptionResnetV1Layer,
  type InceptionResnetV1Residual,
  isUnusedInceptionResnetV1Key,
} from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import { type BatchNorm, foldBatchNorm, StateDictReader, scaled, type WeightSet } from './tensors.js';

// Defined once in the framework's description of the network; re-exported for this package's embedder.
export {
  INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  INCEPTION_RESNET_V1_INPUT_SIZE,
} from '@facerec/framework/internal';

/** One layer of the eager forward pass, NHWC in and out. */
type Layer = (x: tf.Tensor4D) => tf.Tensor4D;

interface Ctx {
  readonly set: WeightSet;
  readonly r: StateDictReader;
}

function batchNorm(r: StateDictReader, prefix: string, channels: number): BatchNorm {
  return {
    weight: r.takeData(`${prefix}.weight`, [channels]),
    bias: r.takeData(`${prefix}.bias`, [channels]),
    runningMean: r.takeData(`${prefix}.running_mean`, [channels]),
    runningVar: r.takeData(`${prefix}.running_var`, [channels]),
    eps: INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  };
}

/** facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one fused conv. */
function basicConv({ set, r }: Ctx, layer: InceptionResnetV1Conv): Layer {
  const { name, in: cin, out: cout, kernel, stride, padding } = layer;
  const shape = [cout, cin, kernel[0], kernel[1]] as const;
  const folded = foldBatchNorm(
    r.takeData(`${name}.conv.weight`, shape),
    undefined,
    batchNorm(r, `${name}.bn`, cout),
  );
  const filter = set.filter(folded.weight, shape);
  const bias = set.vector(folded.bias);
  const pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] =
    padding[0] === 0 && padding[1] === 0
      ? 'valid'
      : [
          [0, 0],
          [padding[0], padding[0]],
          [padding[1], padding[1]],
          [0, 0],
        ];
  return (x) => tf.fused.conv2d({ x, filter, bias, strides: stride, pad, activation: 'relu' });
}

function layer(c: Ctx, step: InceptionResnetV1Layer): Layer {
  if (step.kind === 'conv') return basicConv(c, step);
  const { kernel, stride } = step;
  return (x) => tf.maxPool(x, kernel, stride, 'valid');
}

const chain =
  (layers: readonly Layer[]): Layer =>
  (x) =>
    layers.reduce((y, l) => l(y), x);

/** Every branch on the same input, concatenated along channels (NHWC: the last axis). */
function concatBranches(c: Ctx, list: readonly InceptionResnetV1Branch[]): Layer {
  const branches = list.map((branch) => chain(branch.map((step) => layer(c, step))));
  return (x) =>
    tf.concat(
      branches.map((b) => b(x)),
      3,
    );
}

/**
 * Block35/17/8: concat branches → Conv2d 1×1 (with bias) → ·scale → + x → ReLU (unless the activation is
 * `none`). The scale is folded into the conv, exact up to one float32 rounding.
 */
function residual(c: Ctx, block: InceptionResnetV1Residual): Layer {
  const { set, r } = c;
  const mixed = concatBranches(c, block.branches);
  const { name, in: cin, out: cout } = block.projection;
  const shape = [cout, cin, 1, 1] as const;
  const filter = set.filter(scaled(r.takeData(`${name}.weight`, shape), block.scale), shape);
  const bias = set.vector(scaled(r.takeData(`${name}.bias`, [cout]), block.scale));
  return (x) => {
    const up = tf.fused.conv2d({ x: mixed(x), filter, bias, strides: 1, pad: 'valid' });
    const sum = tf.add<tf.Tensor4D>(up, x);
    return block.activation === 'none' ? sum : tf.relu(sum);
  };
}

function block(c: Ctx, step: InceptionResnetV1Block): Layer {
  if (step.kind === 'mixed') return concatBranches(c, step.branches);
  if (step.kind === 'residual') return residual(c, step);
  return layer(c, step);
}

/**
 * Builds InceptionResnetV1's forward pass with its weights in `set`: NHWC `[N, 160, 160, 3]` input,
 * standardised as `(pixel − 127.5) / 128`, to `[N, 512]` L2-normalised embeddings (`F.normalize`, eps 1e-12).
 * Call the result inside `tf.tidy` (see `runModel`).
 *
 * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of the network.
 */
export function buildInceptionResnetV1(
  set: WeightSet,
  stateDict: StateDict,
  source?: string,
): (input: tf.Tensor4D) => tf.Tensor2D {
  const r = new StateDictReader(stateDict, {
    model: 'InceptionResnetV1',
    ignore: isUnusedInceptionResnetV1Key,
    ...(source === undefined ? {} : { source }),
  });
  const c: Ctx = { set, r };
  const features = chain(INCEPTION_RESNET_V1_BLOCKS.map((step) => block(c, step)));
  const head = INCEPTION_RESNET_V1_HEAD;
  const linearShape = [head.embedding, head.features] as const;
  const linear = foldBatchNorm(
    r.takeData(`${head.linear}.weight`, linearShape),
    undefined,
    batchNorm(r, head.batchNorm, head.embedding),
  );
  const weight = set.matrix(linear.weight, linearShape);
  const bias = set.vector(linear.bias);
  r.assertAllUsed();
  return (input) => {
    const pooled = tf.mean(features(input), [1, 2]) as tf.Tensor2D;
    const embedding = tf.fused.matMul({ a: pooled, b: weight, bias });
    const norm = tf.maximum(tf.norm(embedding, 'euclidean', 1, true), head.normalizeEps);
    return tf.div(embedding, norm);
  };
}
