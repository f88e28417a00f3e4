import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  assertEmbedderInputs,
  DisposedError,
  type EmbedderPreprocessing,
  type FaceEmbedder,
  type ModelStore,
  type RgbImage,
  readCheckpoint,
  SPECIFICATION_VERSION,
  type StateDict,
} from '@facerec/framework';
import type * as tf from '@tensorflow/tfjs-core';
import type { TfjsBackendName } from './backend.js';
import {
  buildInceptionResnetV1,
  INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  INCEPTION_RESNET_V1_INPUT_SIZE,
} from './inception-resnet-v1.js';
import { embedInBatches, onWeightSet, type WeightSet } from './tensors.js';

/**
 * Named pretrained weights for InceptionResnetV1 and their manifest entries; the same names as the onnx
 * provider's, so both produce the same model ids.
 */
export const INCEPTION_RESNET_V1_WEIGHTS = Object.freeze({
  vggface2: 'inception-resnet-v1-vggface2',
  'casia-webface': 'inception-resnet-v1-casia-webface',
} as const);

/** `vggface2`, `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
export type InceptionResnetV1Weights = keyof typeof INCEPTION_RESNET_V1_WEIGHTS | (string & {});

/** facenet's fixed standardisation, `(x − 127.5) / 128`, on 160×160 RGB crops laid out NHWC. */
export const FACENET_NHWC_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  inputSize: Object.freeze({ width: INCEPTION_RESNET_V1_INPUT_SIZE, height: INCEPTION_RESNET_V1_INPUT_SIZE }),
  layout: 'NHWC',
  channelOrder: 'RGB',
  mean: Object.freeze([127.5, 127.5, 127.5]) as [number, number, number],
  std: Object.freeze([128, 128, 128]) as [number, number, number],
}) as EmbedderPreprocessing;

/** Options of {@link TfjsInceptionResnetV1Embedder.fromStateDict}. */
export interface InceptionResnetV1StateDictOptions {
  /** Backend the model runs on (see `selectBackend`). */
  readonly backend: TfjsBackendName;
  /** Model id galleries record, e.g. `inception-resnet-v1/vggface2`. */
  readonly modelId: string;
  /** sha256 of the weights file, when known. */
  readonly weightsSha256?: string;
  /** Faces per forward pass; larger calls are split. Default 16. */
  readonly maxBatchSize?: number;
  /** Where the weights came from, for error messages. */
  readonly source?: string;
}

/** The model id and weights of a named or file-path {@link InceptionResnetV1Weights}. */
export async function resolveInceptionResnetV1Weights(
  store: ModelStore,
  weights: InceptionResnetV1Weights,
): Promise<{ modelId: string; path: string; sha256: string; bytes: Uint8Array }> {
  const named = INCEPTION_RESNET_V1_WEIGHTS[weights as keyof typeof INCEPTION_RESNET_V1_WEIGHTS];
  if (named) {
    const [pulled] = await store.pull([named]);
    return {
      modelId: `inception-resnet-v1/${weights}`,
      path: pulled!.path,
      sha256: pulled!.sha256,
      bytes: await readFile(pulled!.path),
    };
  }
  const file = path.resolve(weights);
  const bytes = await readFile(file);
  return {
    modelId: `inception-resnet-v1/${path.basename(file)}`,
    path: file,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes,
  };
}

/**
 * InceptionResnetV1 (facenet-pytorch) on TensorFlow.js: 160×160 crops in, 512-d L2-normalised embeddings out,
 * in batches of at most `maxBatchSize`. Model ids match the onnx provider's, so galleries interoperate.
 *
 * @example
 * ```ts
 * const embedder = await TfjsInceptionResnetV1Embedder.fromStateDict(stateDict, {
 *   backend: 'wasm',
 *   modelId: 'inception-resnet-v1/vggface2',
 * });
 * const [vector] = await embedder.embed([crop]);
 * ```
 */
export class TfjsInceptionResnetV1Embedder implements FaceEmbedder {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly provider = 'tfjs';
  readonly dimension = INCEPTION_RESNET_V1_EMBEDDING_SIZE;
  readonly preprocessing = FACENET_NHWC_PREPROCESSING;
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly backend: TfjsBackendName;
  readonly #maxBatchSize: number;
  readonly #forward: (input: tf.Tensor4D) => tf.Tensor2D;
  #set: WeightSet | undefined;

  private constructor(
    set: WeightSet,
    forward: (input: tf.Tensor4D) => tf.Tensor2D,
    options: InceptionResnetV1StateDictOptions,
  ) {
    this.#set = set;
    this.#forward = forward;
    this.backend = set.backend;
    this.modelId = options.modelId;
    this.weightsSha256 = options.weightsSha256;
    this.#maxBatchSize = options.maxBatchSize ?? 16;
  }

  /**
   * Builds the embedder from an `InceptionResnetV1` state dict (`logits.*` and `num_batches_tracked` are
   * ignored).
   *
   * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of the network.
   */
  static async fromStateDict(
    stateDict: StateDict,
    options: InceptionResnetV1StateDictOptions,
  ): Promise<TfjsInceptionResnetV1Embedder> {
    return onWeightSet(
      options.backend,
      (set) =>
        new TfjsInceptionResnetV1Embedder(
          set,
          buildInceptionResnetV1(set, stateDict, options.source),
          options,
        ),
    );
  }

  /** Loads `vggface2` or `casia-webface` through the model store, or a `.pt` file by path. */
  static async load(
    store: ModelStore,
    weights: InceptionResnetV1Weights,
    options: { backend: TfjsBackendName; maxBatchSize?: number },
  ): Promise<TfjsInceptionResnetV1Embedder> {
    const resolved = await resolveInceptionResnetV1Weights(store, weights);
    const stateDict = readCheckpoint(resolved.bytes, { source: resolved.path });
    return TfjsInceptionResnetV1Embedder.fromStateDict(stateDict, {
      ...options,
      modelId: resolved.modelId,
      weightsSha256: resolved.sha256,
      source: resolved.path,
    });
  }

  async embed(faces: readonly RgbImage[]): Promise<Float32Array[]> {
    if (!this.#set) throw new DisposedError(`tfjs ${this.modelId} embedder`);
    assertEmbedderInputs(faces, this.preprocessing.inputSize, this.modelId);
    const { width, height } = this.preprocessing.inputSize;
    const pixels = width * height * 3;
    return embedInBatches(
      this.backend,
      this.#forward,
      faces,
      { maxBatchSize: this.#maxBatchSize, height, width, dimension: this.dimension },
      (chunk) => {
        // RgbImage pixels are already interleaved HWC: the NHWC batch is a copy with standardisation.
        const batch = new Float32Array(chunk.length * pixels);
        chunk.forEach((face, f) => {
          const d = face.data;
          for (let i = 0; i < pixels; i++) batch[f * pixels + i] = (d[i]! - 127.5) / 128;
        });
        return batch;
      },
    );
  }

  async dispose(): Promise<void> {
    this.#set?.dispose();
    this.#set = undefined;
  }
}
