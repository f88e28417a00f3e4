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
import {
  type SelectedBackend,
  selectBackend,
  stderrLogger,
  TFJS_BACKENDS,
  type TfjsBackendName,
  type TfjsLogger,
} from './backend.js';
import { type InceptionResnetV1Weights, TfjsInceptionResnetV1Embedder } from './embedder.js';
import { TfjsFaceApiEmbedder } from './faceapi.js';
import { TfjsMtcnnNetworks } from './mtcnn.js';

/** Options of {@link createTfjsProvider}. */
export interface TfjsProviderOptions {
  /**
   * Run on this backend only. Default: the first that starts of `tensorflow` (needs the optional peer
   * `@tensorflow/tfjs-node`), `wasm`, `cpu`.
   */
  backend?: TfjsBackendName;
  /** Model store for weights. Default: `ModelStore.fromEnv` over the bundled manifest. */
  modelStore?: ModelStore;
  /** Receives the one line saying which backend runs and why. Default: stderr. */
  logger?: TfjsLogger;
}

/** Options of the `inception-resnet-v1` embedder (the same as the onnx provider's). */
export interface InceptionResnetV1Options {
  /** `vggface2` (default), `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
  weights?: InceptionResnetV1Weights;
  /** Faces per forward pass; larger batches are split. Default 16. */
  maxBatchSize?: number;
}

/** Options of the `faceapi-resnet` embedder (the same as the onnx provider's). */
export interface FaceApiResnetOptions {
  /** Faces per forward pass; larger batches are split. Default 16. */
  maxBatchSize?: number;
}

/** Detector model ids of this provider. */
export const TFJS_DETECTOR_MODELS = Object.freeze(['mtcnn'] as const);
/** Embedder model ids of this provider. */
export const TFJS_EMBEDDER_MODELS = Object.freeze(['inception-resnet-v1', 'faceapi-resnet'] as const);

/** A detector model id of this provider. */
export type TfjsDetectorModelId = (typeof TFJS_DETECTOR_MODELS)[number];
/** An embedder model id of this provider. */
export type TfjsEmbedderModelId = (typeof TFJS_EMBEDDER_MODELS)[number];

/** The object {@link createTfjsProvider} returns. */
export interface TfjsProvider {
  readonly name: 'tfjs';
  /** An MTCNN detector; the backend starts and its networks load now (once per detector). */
  detector(modelId: TfjsDetectorModelId, options?: MtcnnOptions): MtcnnDetector;
  /** An embedder, loaded before the promise resolves. */
  embedder(modelId: 'inception-resnet-v1', options?: InceptionResnetV1Options): Promise<FaceEmbedder>;
  /** face-api.js's ResNet-34-like recognition net (150×150 input, 128-d), from `@vladmandic/face-api`. */
  embedder(modelId: 'faceapi-resnet', options?: FaceApiResnetOptions): Promise<FaceEmbedder>;
  embedder(
    modelId: TfjsEmbedderModelId,
    options?: InceptionResnetV1Options | FaceApiResnetOptions,
  ): Promise<FaceEmbedder>;
  /** The backend this provider runs on and why it was chosen (started once, on first use). */
  backend(): Promise<SelectedBackend>;
  /** The model store this provider reads weights from. */
  modelStore(): Promise<ModelStore>;
}

const PACKAGE = '@facerec/provider-tfjs';

const providerSchema = z
  .object({
    backend: z
      .string()
      .refine((b) => (TFJS_BACKENDS as readonly string[]).includes(b), {
        error: (issue) =>
          `unknown backend ${JSON.stringify(issue.input)}; valid backends: ${TFJS_BACKENDS.join(', ')}`,
      })
      .optional(),
    modelStore: z.instanceof(ModelStore).optional(),
    logger: z
      .custom<TfjsLogger>((v) => typeof v === 'function', 'expected a function (line: string) => void')
      .optional(),
  })
  .strict();

const irv1Schema = EMBEDDER_OPTION_SCHEMAS['inception-resnet-v1'];

const faceApiSchema = EMBEDDER_OPTION_SCHEMAS['faceapi-resnet'];

/**
 * The TensorFlow.js provider: facenet-pytorch's MTCNN and InceptionResnetV1 as tfjs ops, weights read straight
 * from the upstream PyTorch checkpoints. Runs on `tensorflow` (tfjs-node), `wasm` or `cpu`, chosen once per
 * provider (see `selectBackend`) and logged in one line. Same model ids, options and results as the onnx
 * provider, so the two are interchangeable.
 *
 * @throws InvalidOptionsError for unknown keys or an unknown `backend` (the message lists the valid ones).
 * @example
 * ```ts
 * const tfjs = createTfjsProvider({ backend: 'wasm' });
 * const detector = tfjs.detector('mtcnn', { minFaceSize: 40 });
 * const embedder = await tfjs.embedder('inception-resnet-v1', { weights: 'vggface2', maxBatchSize: 8 });
 * const faceapi = await tfjs.embedder('faceapi-resnet', { maxBatchSize: 8 });
 * ```
 */
export function createTfjsProvider(options: TfjsProviderOptions = {}): TfjsProvider {
  const settings = parseOptions(providerSchema, options, PACKAGE);
  const logger = settings.logger ?? stderrLogger;
  let selected: Promise<SelectedBackend> | undefined;
  const backend = () => {
    selected ??= selectBackend({
      ...(settings.backend === undefined ? {} : { backend: settings.backend as TfjsBackendName }),
      logger,
    });
    return selected;
  };
  let store: Promise<ModelStore> | undefined;
  const modelStore = () => {
    store ??= settings.modelStore
      ? Promise.resolve(settings.modelStore)
      : loadManifest().then((m) => ModelStore.fromEnv(m));
    return store;
  };
  return {
    name: 'tfjs',
    backend,
    modelStore,
    detector(modelId, detectorOptions) {
      if (!TFJS_DETECTOR_MODELS.includes(modelId)) {
        throw new NoSuchModelError('detector', modelId, TFJS_DETECTOR_MODELS);
      }
      const networks = () =>
        Promise.all([modelStore(), backend()]).then(([s, b]) => TfjsMtcnnNetworks.load(s, b.name));
      return new MtcnnDetector('tfjs', networks, detectorOptions);
    },
    async embedder(
      modelId: TfjsEmbedderModelId,
      embedderOptions?: InceptionResnetV1Options | FaceApiResnetOptions,
    ): Promise<FaceEmbedder> {
      if (!TFJS_EMBEDDER_MODELS.includes(modelId)) {
        throw new NoSuchModelError('embedder', modelId, TFJS_EMBEDDER_MODELS);
      }
      if (modelId === 'faceapi-resnet') {
        const o = parseOptions(faceApiSchema, embedderOptions, 'tfjs faceapi-resnet');
        const [s, b] = await Promise.all([modelStore(), backend()]);
        return TfjsFaceApiEmbedder.load(s, { backend: b.name, maxBatchSize: o.maxBatchSize ?? 16 });
      }
      const o = parseOptions(irv1Schema, embedderOptions, 'tfjs inception-resnet-v1');
      const [s, b] = await Promise.all([modelStore(), backend()]);
      return TfjsInceptionResnetV1Embedder.load(s, o.weights ?? 'vggface2', {
        backend: b.name,
        maxBatchSize: o.maxBatchSize ?? 16,
      });
    },
  };
}
