/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) rebuilt as an ONNX graph from its state
 * dict. Module names, kernel sizes, paddings, residual scales and batch-norm eps follow facenet-pytorch's
 * `models/inception_resnet_v1.py`. Every batch norm is folded into the layer before it, and each block's
 * residual scale into its 1×1 up-projection, so the graph is only Conv/Relu/Add/Concat/MaxPool plus the head.
 */
import type { StateDict } from '@facerec/framework';
import { type BatchNormParams, foldBatchNorm, GraphBuilder, scaleTensor } from './builder.js';
import { type BuildGraphOptions, validateBuildOptions } from './options.js';
import { isTrainingOnlyKey, StateDictReader } from './weights.js';

/** Input side of the square face crop InceptionResnetV1 expects. */
export const INCEPTION_RESNET_V1_INPUT_SIZE = 160;
/** Length of the embedding InceptionResnetV1 outputs. */
export const INCEPTION_RESNET_V1_EMBEDDING_SIZE = 512;

/** facenet-pytorch builds every BatchNorm here with eps=0.001 (TensorFlow's default, kept from the port). */
const BN_EPS = 0.001;

type Pair = readonly [number, number];

interface Ctx {
  readonly g: GraphBuilder;
  readonly w: StateDictReader;
}

function batchNorm(w: StateDictReader, prefix: string, channels: number): BatchNormParams {
  return {
    weight: w.take(`${prefix}.weight`, [channels]),
    bias: w.take(`${prefix}.bias`, [channels]),
    runningMean: w.take(`${prefix}.running_mean`, [channels]),
    runningVar: w.take(`${prefix}.running_var`, [channels]),
    eps: BN_EPS,
  };
}

/** facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one Conv + Relu. */
function basicConv(
  { g, w }: Ctx,
  x: string,
  prefix: string,
  cin: number,
  cout: number,
  kernel: Pair,
  stride = 1,
  padding: Pair = [0, 0],
): string {
  const weight = w.take(`${prefix}.conv.weight`, [cout, cin, kernel[0], kernel[1]]);
  const y = g.convBatchNorm(
    x,
    { weight, batchNorm: batchNorm(w, `${prefix}.bn`, cout), strides: [stride, stride], padding },
    prefix,
  );
  return g.relu(y);
}

const maxPool3s2 = (g: GraphBuilder, x: string, name: string): string =>
  g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: false }, name);

/**
 * The shared tail of Block35/17/8: concat branches → Conv2d 1×1 (with bias) → ·scale → + x → ReLU (unless
 * `noRelu`). The scale is folded into the conv, which is exact up to one float32 rounding.
 */
function residual(
  { g, w }: Ctx,
  x: string,
  branches: readonly string[],
  prefix: string,
  concatChannels: number,
  channels: number,
  scale: number,
  noRelu = false,
): string {
  const mixed = g.concat(branches, 1);
  const weight = w.take(`${prefix}.conv2d.weight`, [channels, concatChannels, 1, 1]);
  const bias = w.take(`${prefix}.conv2d.bias`, [channels]);
  const up = g.conv(
    mixed,
    { weight: scaleTensor(weight, scale), bias: scaleTensor(bias, scale) },
    `${prefix}.conv2d`,
  );
  const sum = g.add(up, x);
  return noRelu ? sum : g.relu(sum);
}

function block35(c: Ctx, x: string, prefix: string, scale: number): string {
  const b0 = basicConv(c, x, `${prefix}.branch0`, 256, 32, [1, 1]);
  let b1 = basicConv(c, x, `${prefix}.branch1.0`, 256, 32, [1, 1]);
  b1 = basicConv(c, b1, `${prefix}.branch1.1`, 32, 32, [3, 3], 1, [1, 1]);
  let b2 = basicConv(c, x, `${prefix}.branch2.0`, 256, 32, [1, 1]);
  b2 = basicConv(c, b2, `${prefix}.branch2.1`, 32, 32, [3, 3], 1, [1, 1]);
  b2 = basicConv(c, b2, `${prefix}.branch2.2`, 32, 32, [3, 3], 1, [1, 1]);
  return residual(c, x, [b0, b1, b2], prefix, 96, 256, scale);
}

function block17(c: Ctx, x: string, prefix: string, scale: number): string {
  const b0 = basicConv(c, x, `${prefix}.branch0`, 896, 128, [1, 1]);
  let b1 = basicConv(c, x, `${prefix}.branch1.0`, 896, 128, [1, 1]);
  b1 = basicConv(c, b1, `${prefix}.branch1.1`, 128, 128, [1, 7], 1, [0, 3]);
  b1 = basicConv(c, b1, `${prefix}.branch1.2`, 128, 128, [7, 1], 1, [3, 0]);
  return residual(c, x, [b0, b1], prefix, 256, 896, scale);
}

function block8(c: Ctx, x: string, prefix: string, scale: number, noRelu = false): string {
  const b0 = basicConv(c, x, `${prefix}.branch0`, 1792, 192, [1, 1]);
  let b1 = basicConv(c, x, `${prefix}.branch1.0`, 1792, 192, [1, 1]);
  b1 = basicConv(c, b1, `${prefix}.branch1.1`, 192, 192, [1, 3], 1, [0, 1]);
  b1 = basicConv(c, b1, `${prefix}.branch1.2`, 192, 192, [3, 1], 1, [1, 0]);
  return residual(c, x, [b0, b1], prefix, 384, 1792, scale, noRelu);
}

function mixed6a(c: Ctx, x: string): string {
  const b0 = basicConv(c, x, 'mixed_6a.branch0', 256, 384, [3, 3], 2);
  let b1 = basicConv(c, x, 'mixed_6a.branch1.0', 256, 192, [1, 1]);
  b1 = basicConv(c, b1, 'mixed_6a.branch1.1', 192, 192, [3, 3], 1, [1, 1]);
  b1 = basicConv(c, b1, 'mixed_6a.branch1.2', 192, 256, [3, 3], 2);
  const b2 = maxPool3s2(c.g, x, 'mixed_6a.branch2');
  return c.g.concat([b0, b1, b2], 1);
}

function mixed7a(c: Ctx, x: string): string {
  let b0 = basicConv(c, x, 'mixed_7a.branch0.0', 896, 256, [1, 1]);
  b0 = basicConv(c, b0, 'mixed_7a.branch0.1', 256, 384, [3, 3], 2);
  let b1 = basicConv(c, x, 'mixed_7a.branch1.0', 896, 256, [1, 1]);
  b1 = basicConv(c, b1, 'mixed_7a.branch1.1', 256, 256, [3, 3], 2);
  let b2 = basicConv(c, x, 'mixed_7a.branch2.0', 896, 256, [1, 1]);
  b2 = basicConv(c, b2, 'mixed_7a.branch2.1', 256, 256, [3, 3], 1, [1, 1]);
  b2 = basicConv(c, b2, 'mixed_7a.branch2.2', 256, 256, [3, 3], 2);
  const b3 = maxPool3s2(c.g, x, 'mixed_7a.branch3');
  return c.g.concat([b0, b1, b2, b3], 1);
}

/**
 * Keys InceptionResnetV1 checkpoints may hold that the embedding graph does not use: batch-norm step
 * counters, and the `logits.*` classifier that facenet-pytorch's pretrained VGGFace2 (8631 classes) and
 * CASIA-WebFace (10575 classes) files include.
 */
export function isUnusedInceptionResnetV1Key(key: string): boolean {
  return isTrainingOnlyKey(key) || key.startsWith('logits.');
}

/**
 * Builds facenet-pytorch's InceptionResnetV1 face embedder as ONNX bytes.
 *
 * Input `input`: `[N, 3, 160, 160]` float32, RGB, normalised as facenet-pytorch's `fixed_image_standardization`
 * ((pixel − 127.5) / 128). Output `embedding`: `[N, 512]`, L2-normalised (`F.normalize`, eps 1e-12).
 *
 * @param stateDict - an `InceptionResnetV1` state dict, e.g. `20180402-114759-vggface2.pt`; `logits.*` and
 *   `*.num_batches_tracked` are ignored.
 * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of the network.
 * @example
 * ```ts
 * const bytes = buildInceptionResnetV1(await readCheckpointFile('20180402-114759-vggface2.pt'));
 * const session = await createSession(bytes, { intraOpNumThreads: 2 });
 * ```
 */
export function buildInceptionResnetV1(stateDict: StateDict, options?: BuildGraphOptions): Uint8Array {
  const { metadata, source } = validateBuildOptions('buildInceptionResnetV1', options);
  const g = new GraphBuilder({
    name: 'inception_resnet_v1',
    docString: 'facenet-pytorch InceptionResnetV1 (classify=False), batch norms folded',
    metadata: { ...metadata, facerec_architecture: 'facenet-pytorch/inception_resnet_v1' },
  });
  const w = new StateDictReader(stateDict, {
    model: 'InceptionResnetV1',
    ignore: isUnusedInceptionResnetV1Key,
    ...(source === undefined ? {} : { source }),
  });
  const c: Ctx = { g, w };
  const size = INCEPTION_RESNET_V1_INPUT_SIZE;

  let x = g.input('input', ['N', 3, size, size]);
  x = basicConv(c, x, 'conv2d_1a', 3, 32, [3, 3], 2);
  x = basicConv(c, x, 'conv2d_2a', 32, 32, [3, 3]);
  x = basicConv(c, x, 'conv2d_2b', 32, 64, [3, 3], 1, [1, 1]);
  x = maxPool3s2(g, x, 'maxpool_3a');
  x = basicConv(c, x, 'conv2d_3b', 64, 80, [1, 1]);
  x = basicConv(c, x, 'conv2d_4a', 80, 192, [3, 3]);
  x = basicConv(c, x, 'conv2d_4b', 192, 256, [3, 3], 2);
  for (let i = 0; i < 5; i++) x = block35(c, x, `repeat_1.${i}`, 0.17);
  x = mixed6a(c, x);
  for (let i = 0; i < 10; i++) x = block17(c, x, `repeat_2.${i}`, 0.1);
  x = mixed7a(c, x);
  for (let i = 0; i < 5; i++) x = block8(c, x, `repeat_3.${i}`, 0.2);
  x = block8(c, x, 'block8', 1, true);

  x = g.flatten(g.globalAveragePool(x), 1);
  const linear = foldBatchNorm(
    { weight: w.take('last_linear.weight', [INCEPTION_RESNET_V1_EMBEDDING_SIZE, 1792]) },
    batchNorm(w, 'last_bn', INCEPTION_RESNET_V1_EMBEDDING_SIZE),
  );
  x = g.gemm(x, linear, 'last_linear');
  const embedding = g.l2Normalize(x, { axis: 1, eps: 1e-12, output: 'embedding' });
  w.assertAllUsed();
  g.output(embedding, 'embedding', ['N', INCEPTION_RESNET_V1_EMBEDDING_SIZE]);
  return g.toBytes();
}
