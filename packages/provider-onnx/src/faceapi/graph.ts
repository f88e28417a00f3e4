/**
 * face-api.js's FaceRecognitionNet rebuilt as an ONNX graph from its tfjs weights. The block list, kernel
 * sizes, paddings and the odd-size shortcut padding follow `FACEAPI_RESNET_BLOCKS` (framework), which
 * mirrors face-api.js's `FaceRecognitionNet.forwardInput`, `convLayer.ts` and `residualLayer.ts`. Each
 * conv's bias and per-channel scale layer are folded into the convolution, so the graph is only
 * Conv/Relu/Add/MaxPool/AveragePool/Pad plus the head.
 */
import type { StateDict } from '@facerec/framework';
import {
  FACEAPI_RESNET_BLOCKS,
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_FC,
  FACEAPI_RESNET_FEATURES,
  FACEAPI_RESNET_INPUT_SIZE,
} from '@facerec/framework/internal';
import { attr, GraphBuilder } from '../graph/builder.js';
import { type BuildGraphOptions, validateBuildOptions } from '../graph/options.js';
import { type FloatTensor, StateDictReader } from '../graph/weights.js';

/** Bumped whenever this builder's output changes, so older cached graphs are rebuilt. */
export const FACEAPI_RESNET_GRAPH_VERSION = 1;

interface Ctx {
  readonly g: GraphBuilder;
  readonly w: StateDictReader;
}

/**
 * A face-api.js conv layer `conv2d(x, filters) + bias` then `·scale.weights + scale.biases`, folded into one
 * ONNX Conv: W'[o] = W[o]·s[o], b' = b·s + β. tfjs stores filters HWIO; ONNX wants OIHW. Products are
 * taken in float64 and rounded once.
 */
function foldedConv(
  { w }: Ctx,
  prefix: string,
  kernel: number,
  cin: number,
  cout: number,
): { weight: FloatTensor; bias: FloatTensor } {
  const filters = w.take(`${prefix}/conv/filters`, [kernel, kernel, cin, cout]).data;
  const bias = w.take(`${prefix}/conv/bias`, [cout]).data;
  const scale = w.take(`${prefix}/scale/weights`, [cout]).data;
  const shift = w.take(`${prefix}/scale/biases`, [cout]).data;
  const weight = new Float32Array(cout * cin * kernel * kernel);
  for (let o = 0; o < cout; o++) {
    const s = scale[o]!;
    for (let i = 0; i < cin; i++) {
      for (let y = 0; y < kernel; y++) {
        for (let x = 0; x < kernel; x++) {
          weight[((o * cin + i) * kernel + y) * kernel + x] =
            filters[((y * kernel + x) * cin + i) * cout + o]! * s;
        }
      }
    }
  }
  const folded = new Float32Array(cout);
  for (let o = 0; o < cout; o++) folded[o] = bias[o]! * scale[o]! + shift[o]!;
  return {
    weight: { dims: [cout, cin, kernel, kernel], data: weight },
    bias: { dims: [cout], data: folded },
  };
}

/**
 * One conv layer. `valid` (no padding) is what face-api.js uses for its stride-2 convs; `same` here is
 * only ever stride 1 with an odd kernel, where TensorFlow's SAME padding is symmetric, (k − 1) / 2.
 */
function convLayer(
  c: Ctx,
  x: string,
  prefix: string,
  kernel: number,
  cin: number,
  cout: number,
  mode: 'valid-stride2' | 'same',
  relu: boolean,
): string {
  const { weight, bias } = foldedConv(c, prefix, kernel, cin, cout);
  const down = mode === 'valid-stride2';
  const pad = down ? 0 : (kernel - 1) / 2;
  const y = c.g.conv(x, { weight, bias, strides: down ? [2, 2] : [1, 1], padding: [pad, pad] }, prefix);
  return relu ? c.g.relu(y) : y;
}

/** Output side of a VALID window of `kernel` at `stride` (TensorFlow: ⌈(n − k + 1) / s⌉). */
const validSize = (n: number, kernel: number, stride: number) => Math.floor((n - kernel) / stride) + 1;

/** `tf.pad`-like zero padding of an NCHW tensor: `[n, c, h, w]` amounts before, then after. */
function zeroPad(g: GraphBuilder, x: string, before: readonly number[], after: readonly number[]): string {
  const pads = g.int64Initializer('pads', [8], [...before, ...after]);
  return g.node('Pad', [x, pads], { mode: attr.string('constant') });
}

/** face-api.js `residual`: conv+ReLU → conv → + x → ReLU, at constant size and width. */
function residual(c: Ctx, x: string, name: string, channels: number): string {
  const y = convLayer(c, x, `${name}/conv1`, 3, channels, channels, 'same', true);
  const z = convLayer(c, y, `${name}/conv2`, 3, channels, channels, 'same', false);
  return c.g.relu(c.g.add(z, x));
}

/**
 * face-api.js `residualDown`: a stride-2 VALID conv path and an average-pooled shortcut whose channels are
 * zero-padded to the new width. For odd inputs the conv path is one pixel smaller than the pooled one; as
 * in face-api.js it then gets a zero row at the bottom and a zero column at the right before the sum.
 */
function residualDown(
  c: Ctx,
  x: string,
  name: string,
  cin: number,
  cout: number,
  size: number,
): { out: string; size: number } {
  const { g } = c;
  let y = convLayer(c, x, `${name}/conv1`, 3, cin, cout, 'valid-stride2', true);
  y = convLayer(c, y, `${name}/conv2`, 3, cout, cout, 'same', false);
  const convSize = validSize(size, 3, 2);
  const poolSize = validSize(size, 2, 2);
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
    { name: `${name}/shortcut_pool` },
  );
  if (cout !== cin) shortcut = zeroPad(g, shortcut, [0, 0, 0, 0], [0, cout - cin, 0, 0]);
  if (convSize !== poolSize) {
    const grow = poolSize - convSize;
    y = zeroPad(g, y, [0, 0, 0, 0], [0, 0, grow, grow]);
  }
  return { out: g.relu(g.add(shortcut, y)), size: poolSize };
}

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
  const w = new StateDictReader(weights, {
    model: 'FaceRecognitionNet',
    ...(source === undefined ? {} : { source }),
  });
  const c: Ctx = { g, w };
  let size = FACEAPI_RESNET_INPUT_SIZE;
  let x = g.input('input', ['N', 3, size, size]);
  for (const block of FACEAPI_RESNET_BLOCKS) {
    if (block.kind === 'stem') {
      x = convLayer(c, x, block.name, 7, block.in, block.out, 'valid-stride2', true);
      size = validSize(size, 7, 2);
      x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2] }, `${block.name}/maxpool`);
      size = validSize(size, 3, 2);
    } else if (block.kind === 'residual') {
      x = residual(c, x, block.name, block.channels);
    } else {
      ({ out: x, size } = residualDown(c, x, block.name, block.in, block.out, size));
    }
  }
  x = g.flatten(g.globalAveragePool(x), 1);
  const fc = w.take(FACEAPI_RESNET_FC, [FACEAPI_RESNET_FEATURES, FACEAPI_RESNET_DESCRIPTOR_SIZE]).data;
  // face-api.js computes features · fc with fc as [in, out]; Gemm takes [out, in] here (transB = 1).
  const transposed = new Float32Array(fc.length);
  for (let i = 0; i < FACEAPI_RESNET_FEATURES; i++) {
    for (let o = 0; o < FACEAPI_RESNET_DESCRIPTOR_SIZE; o++) {
      transposed[o * FACEAPI_RESNET_FEATURES + i] = fc[i * FACEAPI_RESNET_DESCRIPTOR_SIZE + o]!;
    }
  }
  const descriptor = g.gemm(
    x,
    {
      weight: { dims: [FACEAPI_RESNET_DESCRIPTOR_SIZE, FACEAPI_RESNET_FEATURES], data: transposed },
      output: 'descriptor',
    },
    'fc',
  );
  const embedding = g.l2Normalize(descriptor, { axis: 1, eps: 1e-12, output: 'embedding' });
  w.assertAllUsed();
  g.output(descriptor, 'descriptor', ['N', FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  g.output(embedding, 'embedding', ['N', FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  return g.toBytes();
}
