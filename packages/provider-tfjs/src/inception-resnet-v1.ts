/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) as TensorFlow.js ops, built from its
 * state dict. The blocks, module names, kernel sizes, paddings, residual scales and batch-norm eps are the
 * framework's `INCEPTION_RESNET_V1_BLOCKS` and `INCEPTION_RESNET_V1_HEAD`, walked (and their weights folded)
 * by its `inceptionResnetV1Trunk`, as in the onnx provider. Every batch norm is folded into the layer before
 * it and each block's residual scale into its 1×1 up-projection, so a forward pass is only fused conv+ReLU,
 * add, concat, max-pool and the head.
 */
import {
  foldedInceptionResnetV1Head,
  INCEPTION_RESNET_V1_HEAD,
  type InceptionResnetV1Ops,
  inceptionResnetV1Reader,
  inceptionResnetV1Trunk,
  type StateDict,
} from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { WeightSet } from './tensors.js';

/** One layer of the eager forward pass, NHWC in and out. */
type Layer = (x: tf.Tensor4D) => tf.Tensor4D;

/** How each step of the plan becomes tfjs ops, its weights held in `set`. */
const tfjsOps = (set: WeightSet): InceptionResnetV1Ops<Layer> => ({
  // facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one fused conv.
  conv: ({ stride, padding }, weights) => {
    const { filter, bias } = set.conv(weights);
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
  },
  maxPool:
    ({ kernel, stride }) =>
    (x) =>
      tf.maxPool(x, kernel, stride, 'valid'),
  chain: (layers) => (x) => layers.reduce((y, layer) => layer(y), x),
  // NHWC: channels are the last axis.
  concat: (branches) => (x) =>
    tf.concat(
      branches.map((branch) => branch(x)),
      3,
    ),
  residual: (mixed, block, projection) => {
    const { filter, bias } = set.conv(projection);
    return (x) => {
      const up = tf.fused.conv2d({ x: mixed(x), filter, bias, strides: 1, pad: 'valid' });
      const sum = tf.add<tf.Tensor4D>(up, x);
      return block.activation === 'none' ? sum : tf.relu(sum);
    };
  },
});

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
  const r = inceptionResnetV1Reader(stateDict, source);
  const features = inceptionResnetV1Trunk(r, tfjsOps(set));
  const head = INCEPTION_RESNET_V1_HEAD;
  const linear = foldedInceptionResnetV1Head(r);
  const weight = set.matrix(linear.weight.data, [head.embedding, head.features]);
  const bias = set.vector(linear.bias.data);
  r.assertAllUsed();
  return (input) => {
    const pooled = tf.mean(features(input), [1, 2]) as tf.Tensor2D;
    const embedding = tf.fused.matMul({ a: pooled, b: weight, bias });
    const norm = tf.maximum(tf.norm(embedding, 'euclidean', 1, true), head.normalizeEps);
    return tf.div(embedding, norm);
  };
}
