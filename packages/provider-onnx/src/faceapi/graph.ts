/**
 * face-api.js's FaceRecognitionNet rebuilt as an ONNX graph from its tfjs weights. The block list, kernel
 * sizes, paddings and the odd-size shortcut padding follow `FACEAPI_RESNET_BLOCKS` (framework), which
 * mirrors face-api.js's `FaceRecognitionNet.forwardInput`, `convLayer.ts` and `residualLayer.ts`, walked by
 * the framework's `faceApiResnetTrunk` as in the tfjs provider. Each conv's bias and per-channel scale layer
 * are folded into the convolution, so the graph is only Conv/Relu/Add/MaxPool/AveragePool/Pad plus the head.
 */
import {
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_INPUT_SIZE,
  type FaceApiResnetOps,
  faceApiResnetFc,
  faceApiResnetReader,
  faceApiResnetTrunk,
  type StateDict,
} from '@facerec/framework/internal';
import { attr, GraphBuilder } from '../graph/builder.js';
import { type BuildGraphOptions, validateBuildOptions } from '../graph/options.js';

/** Bumped whenever this builder's output changes, so older cached graphs are rebuilt. */
export const FACEAPI_RESNET_GRAPH_VERSION = 1;

/** A layer here emits its nodes after those of its input `x` and returns the name of its output. */
type Layer = (x: string) => string;

/** `tf.pad`-like zero padding of an NCHW tensor: `[n, c, h, w]` amounts before, then after. */
function zeroPad(g: GraphBuilder, x: string, before: readonly number[], after: readonly number[]): string {
  const pads = g.int64Initializer('pads', [8], [...before, ...after]);
  return g.node('Pad', [x, pads], { mode: attr.string('constant') });
}

/** How each step of the network becomes ONNX nodes, in order (the node order of the graph). */
const onnxOps = (g: GraphBuilder): FaceApiResnetOps<Layer> => ({
  // `valid` (no padding) is face-api.js's stride-2 conv; `same` is only ever stride 1 with an odd kernel,
  // where TensorFlow's SAME padding is symmetric, (k − 1) / 2.
  conv:
    (prefix, { weight, bias }, mode, relu) =>
    (x) => {
      const down = mode === 'valid-stride2';
      const pad = down ? 0 : (weight.dims[2]! - 1) / 2;
      const y = g.conv(x, { weight, bias, strides: down ? [2, 2] : [1, 1], padding: [pad, pad] }, prefix);
      return relu ? g.relu(y) : y;
    },
  maxPool: (name) => (x) => g.maxPool(x, { kernel: [3, 3], strides: [2, 2] }, `${name}/maxpool`),
  chain: (layers) => (x) => layers.reduce((y, layer) => layer(y), x),
  residual: (path) => (x) => g.relu(g.add(path(x), x)),
  residualDown: (path, block, grow) => (x) => {
    let y = path(x);
    let shortcut = g.node(
      'AveragePool',
      [x],
      {
        kernel_shape: attr.ints([2, 2]),
        strides: attr.ints([2, 2]),
        pads: attr.ints([0, 0, 0, 0]),
        ceil_mode: attr.int(0),
        count_include_pad: attr.int(0),
      },
      { name: `${block.name}/shortcut_pool` },
    );
    if (block.out !== block.in)
      shortcut = zeroPad(g, shortcut, [0, 0, 0, 0], [0, block.out - block.in, 0, 0]);
    if (grow > 0) y = zeroPad(g, y, [0, 0, 0, 0], [0, 0, grow, grow]);
    return g.relu(g.add(shortcut, y));
  },
});

/**
 * Builds face-api.js's face recognition net as ONNX bytes.
 *
 * Input `input`: `[N, 3, 150, 150]` float32 RGB, normalised as face-api.js does it:
 * `(pixel − [122.782, 117.001, 104.298]) / 256` (see `toFaceApiBatch`). Outputs: `descriptor` `[N, 128]`, the
 * raw face-api.js descriptor (not normalised), and `embedding` `[N, 128]`, the same L2-normalised.
 *
 * @param weights - the tfjs weights (`readTfjsWeightsFile` on `face_recognition_model-weights_manifest.json`).
 * @throws CheckpointError when a weight is missing, has the wrong shape, or is not part of the network.
 * @example
 * ```ts
 * const bytes = buildFaceApiResnet(await readTfjsWeightsFile(manifestPath));
 * const session = await createSession(bytes, { intraOpNumThreads: 2 });
 * ```
 */
export function buildFaceApiResnet(weights: StateDict, options?: BuildGraphOptions): Uint8Array {
  const { metadata, source } = validateBuildOptions('buildFaceApiResnet', options);
  const g = new GraphBuilder({
    name: 'faceapi_face_recognition_net',
    docString: 'face-api.js FaceRecognitionNet (ResNet-34-like, 150x150 -> 128), scale layers folded',
    metadata: {
      ...metadata,
      facerec_architecture: 'face-api.js/face_recognition_net',
      facerec_graph_version: String(FACEAPI_RESNET_GRAPH_VERSION),
    },
  });
  const w = faceApiResnetReader(weights, source);
  const trunk = faceApiResnetTrunk(w, onnxOps(g));
  // Gemm takes the fc weight as [out, in] (transB = 1), as faceApiResnetFc gives it.
  const fc = faceApiResnetFc(w);
  w.assertAllUsed();
  const size = FACEAPI_RESNET_INPUT_SIZE;
  const features = g.flatten(g.globalAveragePool(trunk(g.input('input', ['N', 3, size, size]))), 1);
  const descriptor = g.gemm(features, { weight: fc, output: 'descriptor' }, 'fc');
  const embedding = g.l2Normalize(descriptor, { axis: 1, eps: 1e-12, output: 'embedding' });
  g.output(descriptor, 'descriptor', ['N', FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  g.output(embedding, 'embedding', ['N', FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  return g.toBytes();
}
