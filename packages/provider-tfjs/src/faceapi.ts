/**
 * face-api.js's FaceRecognitionNet (ResNet-34-like, dlib's `dlib_face_recognition_resnet_model_v1`) as
 * TensorFlow.js ops, built from its own tfjs weights. The block list, kernel sizes, paddings and the
 * odd-size shortcut padding follow `FACEAPI_RESNET_BLOCKS` (framework), as does the onnx provider's graph.
 * Each conv's bias and per-channel scale layer are folded into the convolution (in float64, rounded once,
 * exactly as the onnx provider folds them), so a forward pass is only fused conv(+ReLU), add, ReLU, pools,
 * pads and the head.
 */
import {
  BaseEmbedder,
  type EmbedderPreprocessing,
  FACEAPI_RESNET,
  type ModelStore,
  type RgbImage,
  type StateDict,
} from '@facerec/framework';
import {
  assertFaceApiInput,
  assertRgbImage,
  FACEAPI_PREPROCESSING,
  FACEAPI_RESNET_BLOCKS,
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_FC,
  FACEAPI_RESNET_FEATURES,
  FACEAPI_RESNET_INPUT_SIZE,
  type FloatRgbImage,
  faceApiInput,
  readTfjsWeightsFile,
  toFaceApiBatch,
} from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { TfjsBackendName } from './backend.js';
import { forwardBatch, onWeightSet, StateDictReader, type WeightSet } from './tensors.js';

/** Model store entries holding face-api.js's recognition weights (shard) and their tfjs manifest (from the registry). */
const [WEIGHTS_ENTRY, MANIFEST_ENTRY] = FACEAPI_RESNET.manifestEntries({}) as [string, string];

/** face-api.js's normalisation, `(pixel − [122.782, 117.001, 104.298]) / 256`, on 150×150 RGB laid out NHWC. */
export const FACEAPI_NHWC_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  ...FACEAPI_PREPROCESSING,
  layout: 'NHWC',
}) as EmbedderPreprocessing;

/** One layer of the eager forward pass, NHWC in and out. */
type Layer = (x: tf.Tensor4D) => tf.Tensor4D;

interface Ctx {
  readonly set: WeightSet;
  readonly r: StateDictReader;
}

/** Output side of a VALID window of `kernel` at `stride`. */
const validSize = (n: number, kernel: number, stride: number) => Math.floor((n - kernel) / stride) + 1;

/**
 * A face-api.js conv layer `conv2d(x, filters) + bias` then `·scale.weights + scale.biases`, folded into one
 * conv: W'[…, o] = W[…, o]·s[o], b' = b·s + β (float64 products, rounded once). `valid` is face-api.js's
 * stride-2 conv; `same` is only ever stride 1 with an odd kernel.
 */
function convLayer(
  { set, r }: Ctx,
  prefix: string,
  kernel: number,
  cin: number,
  cout: number,
  mode: 'valid-stride2' | 'same',
  relu: boolean,
): Layer {
  const filters = r.takeData(`${prefix}/conv/filters`, [kernel, kernel, cin, cout]);
  const bias = r.takeData(`${prefix}/conv/bias`, [cout]);
  const scale = r.takeData(`${prefix}/scale/weights`, [cout]);
  const shift = r.takeData(`${prefix}/scale/biases`, [cout]);
  // WeightSet takes PyTorch OIHW filters (and transposes them to tfjs HWIO), so the fold writes OIHW.
  const oihw = new Float32Array(filters.length);
  for (let o = 0; o < cout; o++) {
    const s = scale[o]!;
    for (let i = 0; i < cin; i++) {
      for (let y = 0; y < kernel; y++) {
        for (let x = 0; x < kernel; x++) {
          oihw[((o * cin + i) * kernel + y) * kernel + x] =
            filters[((y * kernel + x) * cin + i) * cout + o]! * s;
        }
      }
    }
  }
  const folded = new Float32Array(cout);
  for (let o = 0; o < cout; o++) folded[o] = bias[o]! * scale[o]! + shift[o]!;
  const filter = set.filter(oihw, [cout, cin, kernel, kernel]);
  const b = set.vector(folded);
  const down = mode === 'valid-stride2';
  return (x) =>
    tf.fused.conv2d({
      x,
      filter,
      bias: b,
      strides: down ? 2 : 1,
      pad: down ? 'valid' : 'same',
      ...(relu ? { activation: 'relu' as const } : {}),
    });
}

/** face-api.js `residual`: conv+ReLU → conv → + x → ReLU, at constant size and width. */
function residual(c: Ctx, name: string, channels: number): Layer {
  const conv1 = convLayer(c, `${name}/conv1`, 3, channels, channels, 'same', true);
  const conv2 = convLayer(c, `${name}/conv2`, 3, channels, channels, 'same', false);
  return (x) => tf.relu(tf.add<tf.Tensor4D>(conv2(conv1(x)), x));
}

/**
 * face-api.js `residualDown`: a stride-2 VALID conv path and a 2×2 average-pooled shortcut whose channels
 * are zero-padded to the new width. For odd inputs the conv path comes out one pixel smaller than the pooled
 * one; as in face-api.js it then gets a zero row at the bottom and a zero column at the right. Sum → ReLU.
 */
function residualDown(c: Ctx, name: string, cin: number, cout: number, size: number): Layer {
  const conv1 = convLayer(c, `${name}/conv1`, 3, cin, cout, 'valid-stride2', true);
  const conv2 = convLayer(c, `${name}/conv2`, 3, cout, cout, 'same', false);
  const grow = validSize(size, 2, 2) - validSize(size, 3, 2);
  return (x) => {
    let y = conv2(conv1(x));
    if (grow > 0) {
      y = tf.pad(y, [
        [0, 0],
        [0, grow],
        [0, grow],
        [0, 0],
      ]);
    }
    let shortcut = tf.avgPool(x, 2, 2, 'valid');
    if (cout !== cin) {
      shortcut = tf.pad(shortcut, [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, cout - cin],
      ]);
    }
    return tf.relu(tf.add<tf.Tensor4D>(shortcut, y));
  };
}

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
  const r = new StateDictReader(weights, {
    model: 'FaceRecognitionNet',
    ...(source === undefined ? {} : { source }),
  });
  const c: Ctx = { set, r };
  const layers: Layer[] = [];
  let size = FACEAPI_RESNET_INPUT_SIZE;
  for (const block of FACEAPI_RESNET_BLOCKS) {
    if (block.kind === 'stem') {
      const conv = convLayer(c, block.name, 7, block.in, block.out, 'valid-stride2', true);
      layers.push((x) => tf.maxPool(conv(x), 3, 2, 'valid'));
      size = validSize(validSize(size, 7, 2), 3, 2);
    } else if (block.kind === 'residual') {
      layers.push(residual(c, block.name, block.channels));
    } else {
      layers.push(residualDown(c, block.name, block.in, block.out, size));
      size = validSize(size, 2, 2);
    }
  }
  // face-api.js computes features · fc with fc as [in, out]; WeightSet.matrix takes PyTorch's [out, in].
  const fcData = r.takeData(FACEAPI_RESNET_FC, [FACEAPI_RESNET_FEATURES, FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  const outIn = new Float32Array(fcData.length);
  for (let i = 0; i < FACEAPI_RESNET_FEATURES; i++) {
    for (let o = 0; o < FACEAPI_RESNET_DESCRIPTOR_SIZE; o++) {
      outIn[o * FACEAPI_RESNET_FEATURES + i] = fcData[i * FACEAPI_RESNET_DESCRIPTOR_SIZE + o]!;
    }
  }
  const fc = set.matrix(outIn, [FACEAPI_RESNET_DESCRIPTOR_SIZE, FACEAPI_RESNET_FEATURES]);
  r.assertAllUsed();
  return (input) => {
    const features = layers.reduce((x, layer) => layer(x), input);
    return tf.matMul(tf.mean<tf.Tensor2D>(features, [1, 2]), fc);
  };
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
export class TfjsFaceApiEmbedder extends BaseEmbedder {
  readonly backend: TfjsBackendName;
  readonly #forward: (input: tf.Tensor4D) => tf.Tensor2D;
  readonly #set: WeightSet;

  private constructor(
    set: WeightSet,
    forward: (input: tf.Tensor4D) => tf.Tensor2D,
    options: FaceApiEmbedderOptions,
  ) {
    super({
      provider: 'tfjs',
      modelId: FACEAPI_RESNET.modelId({}),
      weightsSha256: options.weightsSha256,
      dimension: FACEAPI_RESNET.dimension,
      preprocessing: FACEAPI_NHWC_PREPROCESSING,
      maxBatchSize: options.maxBatchSize,
    });
    this.#set = set;
    this.#forward = forward;
    this.backend = set.backend;
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
    return onWeightSet(
      options.backend,
      (set) => new TfjsFaceApiEmbedder(set, buildFaceApiResnet(set, weights, options.source), options),
    );
  }

  /** Pulls `faceapi-face-recognition-weights` and `-manifest` through the store and loads them. */
  static async load(
    store: ModelStore,
    options: { backend: TfjsBackendName; maxBatchSize?: number | undefined },
  ): Promise<TfjsFaceApiEmbedder> {
    const pulled = await store.pull([WEIGHTS_ENTRY, MANIFEST_ENTRY]);
    const bin = pulled.find((p) => p.name === WEIGHTS_ENTRY)!;
    const manifest = pulled.find((p) => p.name === MANIFEST_ENTRY)!;
    // The store keeps the manifest and its shard side by side, so the manifest's relative path resolves.
    const weights = await readTfjsWeightsFile(manifest.path);
    return TfjsFaceApiEmbedder.fromWeights(weights, {
      ...options,
      weightsSha256: bin.sha256,
      source: manifest.path,
    });
  }

  /** L2-normalised 128-d embeddings of 150×150 crops (`prepareFaceApiInput` makes one from a whole image). */
  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    return l2NormalizeRows(await this.#run(faces), this.dimension);
  }

  /**
   * face-api.js's raw descriptors (not normalised) of 150×150 inputs: 8-bit crops, or the float images from
   * `faceApiInput`, which match face-api.js without the rounding of an 8-bit crop.
   */
  async describe(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array[]> {
    this.assertLive();
    inputs.forEach((input, i) => {
      assertFaceApiInput(input, `face ${i}`);
    });
    return this.inBatches(inputs, (chunk) => this.#run(chunk));
  }

  /**
   * face-api.js's `computeFaceDescriptor` on whole images of any size: each image padded to a centred square
   * with black, resized bilinearly to 150×150, then described. Raw descriptors, comparable with face-api.js's.
   */
  async computeFaceDescriptors(images: readonly RgbImage[]): Promise<Float32Array[]> {
    this.assertLive();
    const inputs = images.map((image, i) => {
      assertRgbImage(image, `image ${i}`);
      return faceApiInput(image);
    });
    return this.describe(inputs);
  }

  #run(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array> {
    const size = FACEAPI_RESNET_INPUT_SIZE;
    return forwardBatch(this.backend, this.#forward, toFaceApiBatch(inputs, 'NHWC'), [
      inputs.length,
      size,
      size,
    ]);
  }

  protected release(): void {
    this.#set.dispose();
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
