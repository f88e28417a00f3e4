import { availableParallelism } from 'node:os';
import {
  type BuiltFaceProvider,
  createFaceProvider,
  FACEAPI_RESNET,
  type FaceProviderOptions,
  faceProviderOptionsSchema,
  INCEPTION_RESNET_V1,
  implementEmbedder,
  implementMtcnn,
  type ProviderFactory,
  parseOptions,
} from '@facerec/framework';
import { z } from 'zod';
import { OnnxInceptionResnetV1Embedder } from './embedder.js';
import { OnnxFaceApiEmbedder } from './faceapi/index.js';
import { keepOnnxRuntimeTelemetryOff } from './graph/session.js';
import { OnnxMtcnnNetworks } from './mtcnn.js';

/** Options of {@link createOnnxProvider}. */
export interface OnnxProviderOptions extends FaceProviderOptions {
  /** Threads per operator. Default: the number of available cores. */
  intraOpNumThreads?: number;
}

/** The provider {@link createOnnxProvider} returns. */
export type OnnxProvider = BuiltFaceProvider<'onnx'>;

const providerSchema = faceProviderOptionsSchema.extend({
  intraOpNumThreads: z.number().int().min(1).max(256).optional(),
});

/** The models this provider runs natively; any other registry entry with a provider-free `load` runs too. */
const IMPLEMENTATIONS = Object.freeze({
  detectors: [
    implementMtcnn(async (context) =>
      OnnxMtcnnNetworks.load(await context.modelStore(), context.threads ?? availableParallelism()),
    ),
  ],
  embedders: [
    implementEmbedder(INCEPTION_RESNET_V1, async (options, context) =>
      OnnxInceptionResnetV1Embedder.load(await context.modelStore(), options.weights ?? 'vggface2', {
        intraOpNumThreads: context.threads ?? availableParallelism(),
        maxBatchSize: options.maxBatchSize,
        precision: options.precision,
      }),
    ),
    implementEmbedder(FACEAPI_RESNET, async (options, context) =>
      OnnxFaceApiEmbedder.load(await context.modelStore(), {
        intraOpNumThreads: context.threads ?? availableParallelism(),
        maxBatchSize: options.maxBatchSize,
        precision: options.precision,
      }),
    ),
  ],
});

/**
 * The onnxruntime-node provider: MTCNN, InceptionResnetV1 and face-api.js's recognition net built as ONNX
 * graphs straight from the upstream checkpoints (no Python), cached in the model store by weights hash.
 *
 * @throws InvalidOptionsError for unknown keys or out-of-range values.
 * @example
 * const onnx = createOnnxProvider({ intraOpNumThreads: 2 });
 * const detector = onnx.detector('mtcnn', { minFaceSize: 40 });
 * const embedder = await onnx.embedder('inception-resnet-v1', { weights: 'vggface2' });
 */
export function createOnnxProvider(options: OnnxProviderOptions = {}): OnnxProvider {
  const settings = parseOptions(providerSchema, options, '@facerec/provider-onnx');
  // Here too, not only when onnxruntime loads: worker threads load it, and only the main thread can switch it off.
  keepOnnxRuntimeTelemetryOff();
  return createFaceProvider({
    name: 'onnx',
    registry: settings.registry,
    modelStore: settings.modelStore,
    threads: settings.intraOpNumThreads,
    ...IMPLEMENTATIONS,
  });
}

/**
 * The factory under the name every provider package exports, so the Lambda runtime and the CLI load this
 * provider by its registry name (`onnx`); `threads` sets `intraOpNumThreads`.
 */
export const createProvider: ProviderFactory = ({ registry, modelStore, threads } = {}) =>
  createOnnxProvider({
    ...(registry ? { registry } : {}),
    ...(modelStore ? { modelStore } : {}),
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
  });
