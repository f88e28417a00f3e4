/**
 * facenet-pytorch's InceptionResnetV1 (`classify=False`, eval mode) rebuilt as an ONNX graph from its state
 * dict. The blocks, module names, kernel sizes, paddings, residual scales and batch-norm eps are the
 * framework's `INCEPTION_RESNET_V1_BLOCKS` and `INCEPTION_RESNET_V1_HEAD`, walked (and their weights folded)
 * by its `inceptionResnetV1Trunk`, as in the tfjs provider. Every batch norm is folded into the layer before
 * it, and each block's residual scale into its 1×1 up-projection, so the graph is only
 * Conv/Relu/Add/Concat/MaxPool plus the head.
 */
import {
  foldedInceptionResnetV1Head,
  INCEPTION_RESNET_V1_HEAD,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  type InceptionResnetV1Ops,
  inceptionResnetV1Reader,
  inceptionResnetV1Trunk,
  type StateDict,
} from '@facerec/framework/internal';
import { GraphBuilder } from './builder.js';
import { type BuildGraphOptions, validateBuildOptions } from './options.js';

/** A layer here emits its nodes after those of its input `x` and returns the name of its output. */
type Layer = (x: string) => string;

/** How each step of the plan becomes ONNX nodes, in plan order (the node order of the graph). */
const onnxOps = (g: GraphBuilder): InceptionResnetV1Ops<Layer> => ({
  // facenet-pytorch `BasicConv2d`: Conv2d(bias=False) → BatchNorm2d(eps=0.001) → ReLU, as one Conv + Relu.
  conv:
    ({ name, stride, padding }, weights) =>
    (x) =>
      g.relu(g.conv(x, { ...weights, strides: [stride, stride], padding }, name)),
  maxPool:
    ({ name, kernel, stride }) =>
    (x) =>
      g.maxPool(x, { kernel: [kernel, kernel], strides: [stride, stride], ceilMode: false }, name),
  chain: (layers) => (x) => layers.reduce((y, layer) => layer(y), x),
  // Each branch's layers in turn, branch after branch.
  concat: (branches) => (x) =>
    g.concat(
      branches.map((branch) => branch(x)),
      1,
    ),
  residual: (mixed, block, projection) => (x) => {
    const sum = g.add(g.conv(mixed(x), projection, block.projection.name), x);
    return block.activation === 'none' ? sum : g.relu(sum);
  },
});

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
  const w = inceptionResnetV1Reader(stateDict, source);
  const trunk = inceptionResnetV1Trunk(w, onnxOps(g));
  const linear = foldedInceptionResnetV1Head(w);
  w.assertAllUsed();
  const size = INCEPTION_RESNET_V1_INPUT_SIZE;
  const head = INCEPTION_RESNET_V1_HEAD;
  const features = g.flatten(g.globalAveragePool(trunk(g.input('input', ['N', 3, size, size]))), 1);
  const x = g.gemm(features, linear, head.linear);
  const embedding = g.l2Normalize(x, { axis: 1, eps: head.normalizeEps, output: 'embedding' });
  g.output(embedding, 'embedding', ['N', head.embedding]);
  return g.toBytes();
}
