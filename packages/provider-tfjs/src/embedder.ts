import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  BaseEmbedder,
  CheckpointError,
  DEFAULT_MAX_CHECKPOINT_BYTES,
  type EmbedderPreprocessing,
  explainCachedCheckpointError,
  FACENET_PREPROCESSING,
  INCEPTION_RESNET_V1,
  INCEPTION_RESNET_V1_WEIGHTS,
  type InceptionResnetV1Weights,
  inceptionResnetV1CheckpointPath,
  type ModelStore,
  type RgbImage,
  readCheckpoint,
  type StateDict,
} from '@facerec/framework';
import { INCEPTION_RESNET_V1_EMBEDDING_SIZE, readFileUpTo } from '@facerec/framework/internal';
import type { TfjsBackendName } from './backend.js';
import { buildInceptionResnetV1 } from './inception-resnet-v1.js';
import { EmbeddingNetwork } from './tensors.js';

/** facenet's input (the registry's), laid out NHWC as TensorFlow.js convolutions take it. */
export const FACENET_NHWC_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  ...FACENET_PREPROCESSING,
  layout: 'NHWC',
});

/** Options of {@link TfjsInceptionResnetV1Embedder.fromStateDict}. */
export interface InceptionResnetV1StateDictOptions {
  /** Backend the model runs on (see `selectBackend`). */
  readonly backend: TfjsBackendName;
  /** Model id galleries record, e.g. `inception-resnet-v1/vggface2`. */
  readonly modelId: string;
  /** sha256 of the weights file, when known. */
  readonly weightsSha256?: string;
  /** Faces per forward pass; larger calls are split. Default 16. */
  readonly maxBatchSize?: number | undefined;
  /** Where the weights came from, for error messages. */
  readonly source?: string;
}

/** The model id and weights of a named or file-path {@link InceptionResnetV1Weights}. */
export async function resolveInceptionResnetV1Weights(
  store: ModelStore,
  weights: InceptionResnetV1Weights,
): Promise<{ modelId: string; path: string; sha256: string; bytes: Uint8Array }> {
  const modelId = INCEPTION_RESNET_V1.modelId({ weights });
  const named = Object.hasOwn(INCEPTION_RESNET_V1_WEIGHTS, weights)
    ? INCEPTION_RESNET_V1_WEIGHTS[weights as keyof typeof INCEPTION_RESNET_V1_WEIGHTS]
    : undefined;
  if (named) {
    const [pulled] = await store.pull([named]);
    return {
      modelId,
      path: pulled!.path,
      sha256: pulled!.sha256,
      bytes: await readFile(pulled!.path),
    };
  }
  const file = await inceptionResnetV1CheckpointPath('tfjs inception-resnet-v1', weights);
  // Bounded as every checkpoint read is (a huge file given as weights is refused, not read whole).
  const bytes = await readFileUpTo(
    file,
    DEFAULT_MAX_CHECKPOINT_BYTES,
    (size) =>
      new CheckpointError(
        `the file has ${size ?? `more than ${DEFAULT_MAX_CHECKPOINT_BYTES}`} bytes, over the ${DEFAULT_MAX_CHECKPOINT_BYTES}-byte budget`,
        { source: file },
      ),
  );
  return {
    modelId,
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
export class TfjsInceptionResnetV1Embedder extends BaseEmbedder {
  readonly backend: TfjsBackendName;
  readonly #network: EmbeddingNetwork;

  private constructor(network: EmbeddingNetwork, options: InceptionResnetV1StateDictOptions) {
    super({
      provider: 'tfjs',
      modelId: options.modelId,
      weightsSha256: options.weightsSha256,
      dimension: INCEPTION_RESNET_V1_EMBEDDING_SIZE,
      preprocessing: FACENET_NHWC_PREPROCESSING,
      maxBatchSize: options.maxBatchSize,
    });
    this.#network = network;
    this.backend = network.backend;
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
    const network = await EmbeddingNetwork.build(options.backend, (set) =>
      buildInceptionResnetV1(set, stateDict, options.source),
    );
    return new TfjsInceptionResnetV1Embedder(network, options);
  }

  /** Loads `vggface2` or `casia-webface` through the model store, or a `.pt` file by path. */
  static async load(
    store: ModelStore,
    weights: InceptionResnetV1Weights,
    options: { backend: TfjsBackendName; maxBatchSize?: number | undefined },
  ): Promise<TfjsInceptionResnetV1Embedder> {
    const resolved = await resolveInceptionResnetV1Weights(store, weights);
    try {
      const stateDict = readCheckpoint(resolved.bytes, { source: resolved.path });
      return await TfjsInceptionResnetV1Embedder.fromStateDict(stateDict, {
        ...options,
        modelId: resolved.modelId,
        weightsSha256: resolved.sha256,
        source: resolved.path,
      });
    } catch (error) {
      throw explainCachedCheckpointError(error, resolved.path, store.cacheDir);
    }
  }

  protected runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    const { width, height } = this.preprocessing.inputSize;
    const pixels = width * height * 3;
    // RgbImage pixels are already interleaved HWC: the NHWC batch is a copy with standardisation.
    const batch = new Float32Array(faces.length * pixels);
    faces.forEach((face, f) => {
      const d = face.data;
      for (let i = 0; i < pixels; i++) batch[f * pixels + i] = (d[i]! - 127.5) / 128;
    });
    return this.#network.run(batch, [faces.length, height, width]);
  }

  protected release(): void {
    this.#network.dispose();
  }
}
