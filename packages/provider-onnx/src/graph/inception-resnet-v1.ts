/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) rebuilt as an ONNX graph from its state
 * dict. The blocks, module names, kernel sizes, paddings, residual scales and batch-norm eps are the
 * framework's `INCEPTION_RESNET_V1_BLOCKS` and `INCEPTION_RESNET_V1_HEAD`, which the tfjs provider builds
 * from too. Every batch norm is folded into the layer before it, and each block's residual scale into its 1×1
 * up-projection, so the graph is only Conv/Relu/Add/Concat/MaxPool plus the head.
 */
import type { StateDict } from '@facerec/framework';
import {
  INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  INCEPTION_RESNET_V1_BLOCKS,
  INCEPTION_RESNET_V1_HEAD,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  type InceptionResnetV1Block,
  type InceptionResnetV1Branch,
  type InceptionResnetV1Conv,
  type InceptionResnetV1Layer,
  type InceptionResnetV1Residual,
  isUnusedInceptionResnetV1Key,
} from '@facerec/framework/internal';
import { type BatchNormParams, foldBatchNorm, GraphBuilder, scaleTensor } from './builder.js';
import { type BuildGraphOptions, validateBuildOptions } from './options.js';
import { StateDictReader } from './weights.js';

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
    eps: INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  };
}

/** facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one Conv + Relu. */
function basicConv({ g, w }: Ctx, x: string, layer: InceptionResnetV1Conv): string {
  const { name, in: cin, out: cout, kernel, stride, padding } = layer;
  const weight = w.take(`${name}.conv.weight`, [cout, cin, kernel[0], kernel[1]]);
  const y = g.convBatchNorm(
    x,
    { weight, batchNorm: batchNorm(w, `${name}.bn`, cout), strides: [stride, stride], padding },
    name,
  );
  return g.relu(y);
}

function layer(c: Ctx, x: string, step: InceptionResnetV1Layer): string {
  if (step.kind === 'conv') return basicConv(c, x, step);
  const { kernel, stride } = step;
  return c.g.maxPool(x, { kernel: [kernel, kernel], strides: [stride, stride], ceilMode: false }, step.name);
}

/** Each branch's layers in turn, branch after branch (the node order of the graph). */
const branches = (c: Ctx, x: string, list: readonly InceptionResnetV1Branch[]): string[] =>
  list.map((branch) => branch.reduce((y, step) => layer(c, y, step), x));

/**
 * Block35/17/8: concat branches → Conv2d 1×1 (with bias) → ·scale → + x → ReLU (unless the activation is
 * `none`). The scale is folded into the conv, which is exact up to one float32 rounding.
 */
function residual(c: Ctx, x: string, block: InceptionResnetV1Residual): string {
  const { g, w } = c;
  const mixed = g.concat(branches(c, x, block.branches), 1);
  const { name, in: cin, out: cout } = block.projection;
  const weight = w.take(`${name}.weight`, [cout, cin, 1, 1]);
  const bias = w.take(`${name}.bias`, [cout]);
  const up = g.conv(
    mixed,
    { weight: scaleTensor(weight, block.scale), bias: scaleTensor(bias, block.scale) },
    name,
  );
  const sum = g.add(up, x);
  return block.activation === 'none' ? sum : g.relu(sum);
}

function block(c: Ctx, x: string, step: InceptionResnetV1Block): string {
  if (step.kind === 'mixed') return c.g.concat(branches(c, x, step.branches), 1);
  if (step.kind === 'residual') return residual(c, x, step);
  return layer(c, x, step);
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
  const head = INCEPTION_RESNET_V1_HEAD;
  let x = g.input('input', ['N', 3, size, size]);
  for (const step of INCEPTION_RESNET_V1_BLOCKS) x = block(c, x, step);
  x = g.flatten(g.globalAveragePool(x), 1);
  const linear = foldBatchNorm(
    { weight: w.take(`${head.linear}.weight`, [head.embedding, head.features]) },
    batchNorm(w, head.batchNorm, head.embedding),
  );
  x = g.gemm(x, linear, head.linear);
  const embedding = g.l2Normalize(x, { axis: 1, eps: head.normalizeEps, output: 'embedding' });
  w.assertAllUsed();
  g.output(embedding, 'embedding', ['N', head.embedding]);
  return g.toBytes();
}
