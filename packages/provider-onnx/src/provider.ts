import { availableParallelism } from 'node:os';
import {
  EMBEDDER_OPTION_SCHEMAS,
  type FaceEmbedder,
  loadManifest,
  ModelStore,
  MtcnnDetector,
  type MtcnnOptions,
  NoSuchModelError,
  parseOptions,
} from '@facerec/framework';
import { z } from 'zod';
import { type InceptionResnetV1Weights, OnnxInceptionResnetV1Embedder } from './embedder.js';
import { OnnxFaceApiEmbedder } from './faceapi/index.js';
import { OnnxMtcnnNetworks } from './mtcnn.js';

/** Options of {@link createOnnxProvider}. */
export interface OnnxProviderOptions {
  /** Threads per operator. Default: the number of available cores. */
  intraOpNumThreads?: number;
  /** Model store for weights and cached graphs. Default: `ModelStore.fromEnv` over the bundled manifest. */
  modelStore?: ModelStore;
}

/** Options of the `inception-resnet-v1` embedder. */
export interface InceptionResnetV1Options {
  /** `vggface2` (default), `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
  weights?: InceptionResnetV1Weights;
  /** Faces per inference call; larger batches are split. Default 16. */
  maxBatchSize?: number;
}

/** Options of the `faceapi-resnet` embedder. */
export interface FaceApiResnetOptions {
  /** Faces per inference call; larger batches are split. Default 16. */
  maxBatchSize?: number;
}

/** Detector model ids of this provider. */
export const ONNX_DETECTOR_MODELS = ['mtcnn'] as const;
/** Embedder model ids of this provider. */
export const ONNX_EMBEDDER_MODELS = ['inception-resnet-v1', 'faceapi-resnet'] as const;

export type OnnxDetectorModelId = (typeof ONNX_DETECTOR_MODELS)[number];
export type OnnxEmbedderModelId = (typeof ONNX_EMBEDDER_MODELS)[number];

/** The object {@link createOnnxProvider} returns. */
export interface OnnxProvider {
  readonly name: 'onnx';
  /** An MTCNN detector; its networks start loading now (once per detector). */
  detector(modelId: OnnxDetectorModelId, options?: MtcnnOptions): MtcnnDetector;
  /** An embedder, loaded (and on first use converted and cached) before the promise resolves. */
  embedder(modelId: 'inception-resnet-v1', options?: InceptionResnetV1Options): Promise<FaceEmbedder>;
  /** face-api.js's ResNet-34-like recognition net (150×150 input, 128-d), from `@vladmandic/face-api`. */
  embedder(modelId: 'faceapi-resnet', options?: FaceApiResnetOptions): Promise<FaceEmbedder>;
  embedder(
    modelId: OnnxEmbedderModelId,
    options?: InceptionResnetV1Options | FaceApiResnetOptions,
  ): Promise<FaceEmbedder>;
  /** The model store this provider reads weights from. */
  modelStore(): Promise<ModelStore>;
}

const providerSchema = z
  .object({
    intraOpNumThreads: z.number().int().min(1).max(256).optional(),
    modelStore: z.instanceof(ModelStore).optional(),
  })
  .strict();

const faceApiSchema = EMBEDDER_OPTION_SCHEMAS['faceapi-resnet'];

const irv1Schema = EMBEDDER_OPTION_SCHEMAS['inception-resnet-v1'];

/**
 * The onnxruntime-node provider: MTCNN and InceptionResnetV1 built as ONNX graphs straight from
 * facenet-pytorch's checkpoints (no Python), cached in the model store by weights hash.
 *
 * @example
 * const onnx = createOnnxProvider({ intraOpNumThreads: 2 });
 * const detector = onnx.detector('mtcnn', { minFaceSize: 40 });
 * const embedder = await onnx.embedder('inception-resnet-v1', { weights: 'vggface2' });
 */
export function createOnnxProvider(options: OnnxProviderOptions = {}): OnnxProvider {
  const settings = parseOptions(providerSchema, options, '@facerec/provider-onnx');
  const threads = settings.intraOpNumThreads ?? availableParallelism();
  let store: Promise<ModelStore> | undefined;
  const modelStore = () => {
    store ??= settings.modelStore
      ? Promise.resolve(settings.modelStore)
      : loadManifest().then((m) => ModelStore.fromEnv(m));
    return store;
  };
  return {
    name: 'onnx',
    modelStore,
    detector(modelId, detectorOptions) {
      if (!ONNX_DETECTOR_MODELS.includes(modelId))
        throw new NoSuchModelError('detector', modelId, ONNX_DETECTOR_MODELS);
      return new MtcnnDetector(
        'onnx',
        () => modelStore().then((s) => OnnxMtcnnNetworks.load(s, threads)),
        detectorOptions,
      );
    },
    async embedder(
      modelId: OnnxEmbedderModelId,
      embedderOptions?: InceptionResnetV1Options | FaceApiResnetOptions,
    ): Promise<FaceEmbedder> {
      if (!ONNX_EMBEDDER_MODELS.includes(modelId))
        throw new NoSuchModelError('embedder', modelId, ONNX_EMBEDDER_MODELS);
      if (modelId === 'faceapi-resnet') {
        const o = parseOptions(faceApiSchema, embedderOptions, 'onnx faceapi-resnet');
        return OnnxFaceApiEmbedder.load(await modelStore(), {
          intraOpNumThreads: threads,
          maxBatchSize: o.maxBatchSize ?? 16,
        });
      }
      const o = parseOptions(irv1Schema, embedderOptions, 'onnx inception-resnet-v1');
      return OnnxInceptionResnetV1Embedder.load(await modelStore(), o.weights ?? 'vggface2', {
        intraOpNumThreads: threads,
        maxBatchSize: o.maxBatchSize ?? 16,
      });
    },
  };
}
