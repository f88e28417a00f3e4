/**
 * face-api.js's FaceRecognitionNet (ResNet-34-like, dlib's `dlib_face_recognition_resnet_model_v1`) as
 * TensorFlow.js ops, built from its own tfjs weights. The block list, kernel sizes, paddings and the
 * odd-size shortcut padding follow `FACEAPI_RESNET_BLOCKS`, walked by the framework's `faceApiResnetTrunk`,
 * as is the onnx provider's graph.
 * Each conv's bias and per-channel scale layer are folded into the convolution (in float64, rounded once,
 * exactly as the onnx provider folds them), so a forward pass is only fused conv(+ReLU), add, ReLU, pools,
 * pads and the head.
 */
import type { EmbedderPreprocessing, ModelStore, RgbImage, StateDict } from '@facerec/framework';
import {
  FACEAPI_PREPROCESSING,
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_FEATURES,
  FACEAPI_RESNET_INPUT_SIZE,
  FaceApiEmbedder,
  type FaceApiResnetOps,
  type FloatRgbImage,
  faceApiResnetFc,
  faceApiResnetReader,
  faceApiResnetTrunk,
  pullFaceApiResnetFiles,
  readTfjsWeightsFile,
  toFaceApiBatch,
} from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { TfjsBackendName } from './backend.js';
import { EmbeddingNetwork, type WeightSet } from './tensors.js';

/** face-api.js's normalisation, `(pixel − [122.782, 117.001, 104.298]) / 256`, on 150×150 RGB laid out NHWC. */
export const FACEAPI_NHWC_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  ...FACEAPI_PREPROCESSING,
  layout: 'NHWC',
}) as EmbedderPreprocessing;

/** One layer of the eager forward pass, NHWC in and out. */
type Layer = (x: tf.Tensor4D) => tf.Tensor4D;

/** How each step of the network becomes tfjs ops, its weights held in `set`. */
const tfjsOps = (set: WeightSet): FaceApiResnetOps<Layer> => ({
  // `valid` is face-api.js's stride-2 conv; `same` is only ever stride 1 with an odd kernel.
  conv: (_prefix, weights, mode, relu) => {
    const { filter, bias } = set.conv(weights);
    const down = mode === 'valid-stride2';
    return (x) =>
      tf.fused.conv2d({
        x,
        filter,
        bias,
        strides: down ? 2 : 1,
        pad: down ? 'valid' : 'same',
        ...(relu ? { activation: 'relu' as const } : {}),
      });
  },
  maxPool: () => (x) => tf.maxPool(x, 3, 2, 'valid'),
  chain: (layers) => (x) => layers.reduce((y, layer) => layer(y), x),
  residual: (path) => (x) => tf.relu(tf.add<tf.Tensor4D>(path(x), x)),
  residualDown: (path, block, grow) => (x) => {
    let y = path(x);
    if (grow > 0) {
      y = tf.pad(y, [
        [0, 0],
        [0, grow],
        [0, grow],
        [0, 0],
      ]);
    }
    let shortcut = tf.avgPool(x, 2, 2, 'valid');
    if (block.out !== block.in) {
      shortcut = tf.pad(shortcut, [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, block.out - block.in],
      ]);
    }
    return tf.relu(tf.add<tf.Tensor4D>(shortcut, y));
  },
});

/**
 * Builds face-api.js's face recognition net on the set's backend: `[N, 150, 150, 3]` normalised NHWC in
 * (see `toFaceApiBatch`), the raw `[N, 128]` descriptor out (not normalised).
 *
 * @throws CheckpointError when a weight is missing, has the wrong shape, or is not part of the network.
 */
export function buildFaceApiResnet(
  set: WeightSet,
  weights: StateDict,
  source?: string,
): (input: tf.Tensor4D) => tf.Tensor2D {
  const r = faceApiResnetReader(weights, source);
  const features = faceApiResnetTrunk(r, tfjsOps(set));
  // WeightSet.matrix takes PyTorch's [out, in], as faceApiResnetFc gives it.
  const fc = set.matrix(faceApiResnetFc(r).data, [FACEAPI_RESNET_DESCRIPTOR_SIZE, FACEAPI_RESNET_FEATURES]);
  r.assertAllUsed();
  return (input) => tf.matMul(tf.mean<tf.Tensor2D>(features(input), [1, 2]), fc);
}

/** Options of {@link TfjsFaceApiEmbedder.fromWeights}. */
export interface FaceApiEmbedderOptions {
  /** Backend the model runs on (see `selectBackend`). */
  readonly backend: TfjsBackendName;
  /** sha256 of the weights shard, when known. */
  readonly weightsSha256?: string;
  /** Faces per forward pass; larger calls are split. Default 16. */
  readonly maxBatchSize?: number | undefined;
  /** Where the weights came from, for error messages. */
  readonly source?: string;
}

/**
 * face-api.js's face recognition net on TensorFlow.js: 150×150 crops in, 128-d descriptors out, in batches
 * of at most `maxBatchSize`. Same model id, weights and results as the onnx provider's `faceapi-resnet`.
 *
 * - {@link TfjsFaceApiEmbedder.embed} (the `FaceEmbedder` contract): L2-normalised vectors.
 * - {@link TfjsFaceApiEmbedder.describe}: face-api.js's raw descriptors (|d| ≈ 1.3–1.6) for 150×150 inputs.
 * - {@link TfjsFaceApiEmbedder.computeFaceDescriptors}: face-api.js's `computeFaceDescriptor` for whole
 *   images of any size (centred pad-to-square, tfjs bilinear resize to 150, then `describe`).
 *
 * Thresholds: face-api.js calls two raw descriptors the same person below a Euclidean distance of 0.6; on
 * the unit vectors from `embed` the equivalent is ≈ 0.4 (cosine ≈ 0.92).
 *
 * @example
 * ```ts
 * const embedder = await TfjsFaceApiEmbedder.load(store, { backend: 'wasm', maxBatchSize: 16 });
 * const [raw] = await embedder.computeFaceDescriptors([await decodeImage(bytes)]); // as face-api.js
 * const [unit] = await embedder.embed([crop150]); // |unit| = 1
 * ```
 */
export class TfjsFaceApiEmbedder extends FaceApiEmbedder {
  readonly backend: TfjsBackendName;
  readonly #network: EmbeddingNetwork;

  private constructor(network: EmbeddingNetwork, options: FaceApiEmbedderOptions) {
    super({
      provider: 'tfjs',
      weightsSha256: options.weightsSha256,
      preprocessing: FACEAPI_NHWC_PREPROCESSING,
      maxBatchSize: options.maxBatchSize,
    });
    this.#network = network;
    this.backend = network.backend;
  }

  /**
   * Builds the embedder from the tfjs weights (`readTfjsWeightsFile` on the weights manifest).
   *
   * @throws CheckpointError when a weight is missing, has the wrong shape, or is not part of the network.
   */
  static async fromWeights(
    weights: StateDict,
    options: FaceApiEmbedderOptions,
  ): Promise<TfjsFaceApiEmbedder> {
    const network = await EmbeddingNetwork.build(options.backend, (set) =>
      buildFaceApiResnet(set, weights, options.source),
    );
    return new TfjsFaceApiEmbedder(network, options);
  }

  /** Pulls `faceapi-face-recognition-weights` and `-manifest` through the store and loads them. */
  static async load(
    store: ModelStore,
    options: { backend: TfjsBackendName; maxBatchSize?: number | undefined },
  ): Promise<TfjsFaceApiEmbedder> {
    const { weights, manifest } = await pullFaceApiResnetFiles(store);
    // The store keeps the manifest and its shard side by side, so the manifest's relative path resolves.
    return TfjsFaceApiEmbedder.fromWeights(await readTfjsWeightsFile(manifest.path), {
      ...options,
      weightsSha256: weights.sha256,
      source: manifest.path,
    });
  }

  /** L2-normalised 128-d embeddings of 150×150 crops (`prepareFaceApiInput` makes one from a whole image). */
  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    return l2NormalizeRows(await this.runDescriptors(faces), this.dimension);
  }

  protected runDescriptors(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array> {
    const size = FACEAPI_RESNET_INPUT_SIZE;
    return this.#network.run(toFaceApiBatch(inputs, 'NHWC'), [inputs.length, size, size]);
  }

  protected release(): void {
    this.#network.dispose();
  }
}

/** Divides each row by its Euclidean norm (float64), as the onnx graph's `embedding` output (eps 1e-12). */
function l2NormalizeRows(rows: Float32Array, dimension: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let r = 0; r < rows.length; r += dimension) {
    let s = 0;
    for (let i = r; i < r + dimension; i++) s += rows[i]! * rows[i]!;
    const n = Math.max(Math.sqrt(s), 1e-12);
    for (let i = r; i < r + dimension; i++) out[i] = rows[i]! / n;
  }
  return out;
}
