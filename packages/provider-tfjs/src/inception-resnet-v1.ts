/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) as TensorFlow.js ops, built from its state
 * dict. Module names, kernel sizes, paddings, residual scales (0.17 / 0.10 / 0.20) and batch-norm eps (0.001)
 * follow facenet-pytorch's `models/inception_resnet_v1.py`, as does the onnx provider's graph. Every batch
 * norm is folded into the layer before it and each block's residual scale into its 1×1 up-projection, so a
 * forward pass is only fused conv+ReLU, add, concat, max-pool and the head.
 */
import type { StateDict } from '@facerec/framework';
import * as tf from '@tensorflow/tfjs-core';
import {
  type BatchNorm,
  foldBatchNorm,
  isTrainingOnlyKey,
  StateDictReader,
  scaled,
  type WeightSet,
} from './tensors.js';

/** Side of the square face crop InceptionResnetV1 takes. */
export const INCEPTION_RESNET_V1_INPUT_SIZE = 160;
/** Length of the embedding. */
export const INCEPTION_RESNET_V1_EMBEDDING_SIZE = 512;

/** facenet-pytorch builds every BatchNorm here with eps=0.001 (TensorFlow's default, kept from the port). */
const BN_EPS = 0.001;

/** One layer of the eager forward pass, NHWC in and out. */
type Layer = (x: tf.Tensor4D) => tf.Tensor4D;

type Pair = readonly [number, number];

interface Ctx {
  readonly set: WeightSet;
  readonly r: StateDictReader;
}

/**
 * Keys an InceptionResnetV1 checkpoint may hold that embedding does not use: batch-norm step counters and
 * the `logits.*` classifier of the pretrained VGGFace2 (8631 classes) and CASIA-WebFace (10575) files.
 */
export function isUnusedInceptionResnetV1Key(key: string): boolean {
  return isTrainingOnlyKey(key) || key.startsWith('logits.');
}

function batchNorm(r: StateDictReader, prefix: string, channels: number): BatchNorm {
  return {
    weight: r.takeData(`${prefix}.weight`, [channels]),
    bias: r.takeData(`${prefix}.bias`, [channels]),
    runningMean: r.takeData(`${prefix}.running_mean`, [channels]),
    runningVar: r.takeData(`${prefix}.running_var`, [channels]),
    eps: BN_EPS,
  };
}

/** facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one fused conv. */
function basicConv(
  { set, r }: Ctx,
  prefix: string,
  cin: number,
  cout: number,
  kernel: Pair,
  stride = 1,
  padding: Pair = [0, 0],
): Layer {
  const shape = [cout, cin, kernel[0], kernel[1]] as const;
  const folded = foldBatchNorm(
    r.takeData(`${prefix}.conv.weight`, shape),
    undefined,
    batchNorm(r, `${prefix}.bn`, cout),
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

const maxPool3s2: Layer = (x) => tf.maxPool(x, 3, 2, 'valid');

const chain =
  (...layers: Layer[]): Layer =>
  (x) =>
    layers.reduce((y, layer) => layer(y), x);

/**
 * The shared tail of Block35/17/8: concat branches → Conv2d 1×1 (with bias) → ·scale → + x → ReLU (unless
 * `noRelu`). The scale is folded into the conv, exact up to one float32 rounding.
 */
function residual(
  { set, r }: Ctx,
  branches: readonly Layer[],
  prefix: string,
  concatChannels: number,
  channels: number,
  scale: number,
  noRelu = false,
): Layer {
  const shape = [channels, concatChannels, 1, 1] as const;
  const filter = set.filter(scaled(r.takeData(`${prefix}.conv2d.weight`, shape), scale), shape);
  const bias = set.vector(scaled(r.takeData(`${prefix}.conv2d.bias`, [channels]), scale));
  return (x) => {
    const mixed = tf.concat(
      branches.map((b) => b(x)),
      3,
    );
    const sum = tf.add<tf.Tensor4D>(tf.fused.conv2d({ x: mixed, filter, bias, strides: 1, pad: 'valid' }), x);
    return noRelu ? sum : tf.relu(sum);
  };
}

function block35(c: Ctx, p: string, scale: number): Layer {
  return residual(
    c,
    [
      basicConv(c, `${p}.branch0`, 256, 32, [1, 1]),
      chain(
        basicConv(c, `${p}.branch1.0`, 256, 32, [1, 1]),
        basicConv(c, `${p}.branch1.1`, 32, 32, [3, 3], 1, [1, 1]),
      ),
      chain(
        basicConv(c, `${p}.branch2.0`, 256, 32, [1, 1]),
        basicConv(c, `${p}.branch2.1`, 32, 32, [3, 3], 1, [1, 1]),
        basicConv(c, `${p}.branch2.2`, 32, 32, [3, 3], 1, [1, 1]),
      ),
    ],
    p,
    96,
    256,
    scale,
  );
}

function block17(c: Ctx, p: string, scale: number): Layer {
  return residual(
    c,
    [
      basicConv(c, `${p}.branch0`, 896, 128, [1, 1]),
      chain(
        basicConv(c, `${p}.branch1.0`, 896, 128, [1, 1]),
        basicConv(c, `${p}.branch1.1`, 128, 128, [1, 7], 1, [0, 3]),
        basicConv(c, `${p}.branch1.2`, 128, 128, [7, 1], 1, [3, 0]),
      ),
    ],
    p,
    256,
    896,
    scale,
  );
}

function block8(c: Ctx, p: string, scale: number, noRelu = false): Layer {
  return residual(
    c,
    [
      basicConv(c, `${p}.branch0`, 1792, 192, [1, 1]),
      chain(
        basicConv(c, `${p}.branch1.0`, 1792, 192, [1, 1]),
        basicConv(c, `${p}.branch1.1`, 192, 192, [1, 3], 1, [0, 1]),
        basicConv(c, `${p}.branch1.2`, 192, 192, [3, 1], 1, [1, 0]),
      ),
    ],
    p,
    384,
    1792,
    scale,
    noRelu,
  );
}

const concatBranches =
  (...branches: Layer[]): Layer =>
  (x) =>
    tf.concat(
      branches.map((b) => b(x)),
      3,
    );

function mixed6a(c: Ctx): Layer {
  return concatBranches(
    basicConv(c, 'mixed_6a.branch0', 256, 384, [3, 3], 2),
    chain(
      basicConv(c, 'mixed_6a.branch1.0', 256, 192, [1, 1]),
      basicConv(c, 'mixed_6a.branch1.1', 192, 192, [3, 3], 1, [1, 1]),
      basicConv(c, 'mixed_6a.branch1.2', 192, 256, [3, 3], 2),
    ),
    maxPool3s2,
  );
}

function mixed7a(c: Ctx): Layer {
  return concatBranches(
    chain(
      basicConv(c, 'mixed_7a.branch0.0', 896, 256, [1, 1]),
      basicConv(c, 'mixed_7a.branch0.1', 256, 384, [3, 3], 2),
    ),
    chain(
      basicConv(c, 'mixed_7a.branch1.0', 896, 256, [1, 1]),
      basicConv(c, 'mixed_7a.branch1.1', 256, 256, [3, 3], 2),
    ),
    chain(
      basicConv(c, 'mixed_7a.branch2.0', 896, 256, [1, 1]),
      basicConv(c, 'mixed_7a.branch2.1', 256, 256, [3, 3], 1, [1, 1]),
      basicConv(c, 'mixed_7a.branch2.2', 256, 256, [3, 3], 2),
    ),
    maxPool3s2,
  );
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
  const layers: Layer[] = [
    basicConv(c, 'conv2d_1a', 3, 32, [3, 3], 2),
    basicConv(c, 'conv2d_2a', 32, 32, [3, 3]),
    basicConv(c, 'conv2d_2b', 32, 64, [3, 3], 1, [1, 1]),
    maxPool3s2,
    basicConv(c, 'conv2d_3b', 64, 80, [1, 1]),
    basicConv(c, 'conv2d_4a', 80, 192, [3, 3]),
    basicConv(c, 'conv2d_4b', 192, 256, [3, 3], 2),
  ];
  for (let i = 0; i < 5; i++) layers.push(block35(c, `repeat_1.${i}`, 0.17));
  layers.push(mixed6a(c));
  for (let i = 0; i < 10; i++) layers.push(block17(c, `repeat_2.${i}`, 0.1));
  layers.push(mixed7a(c));
  for (let i = 0; i < 5; i++) layers.push(block8(c, `repeat_3.${i}`, 0.2));
  layers.push(block8(c, 'block8', 1, true));
  const size = INCEPTION_RESNET_V1_EMBEDDING_SIZE;
  const linearShape = [size, 1792] as const;
  const head = foldBatchNorm(
    r.takeData('last_linear.weight', linearShape),
    undefined,
    batchNorm(r, 'last_bn', size),
  );
  const weight = set.matrix(head.weight, linearShape);
  const bias = set.vector(head.bias);
  r.assertAllUsed();
  const features = chain(...layers);
  return (input) => {
    const pooled = tf.mean(features(input), [1, 2]) as tf.Tensor2D;
    const embedding = tf.fused.matMul({ a: pooled, b: weight, bias });
    const norm = tf.maximum(tf.norm(embedding, 'euclidean', 1, true), 1e-12);
    return tf.div(embedding, norm);
  };
}
