import {
  type BuiltFaceProvider,
  createFaceProvider,
  FACEAPI_RESNET,
  type FaceProviderOptions,
  faceProviderOptionsSchema,
  INCEPTION_RESNET_V1,
  InvalidOptionsError,
  implementEmbedder,
  implementMtcnn,
  type ProviderFactory,
  parseOptions,
} from '@facerec/framework';
import { z } from 'zod';

/** The int8 graphs are onnxruntime QDQ models; tfjs has no int8 kernels to run them with. */
function onlyFp32(precision: string | undefined, embedder: string): void {
  if (precision === 'int8')
    throw new InvalidOptionsError(
      '@facerec/provider-tfjs',
      `precision "int8" of ${embedder} is available on the onnx provider only (createOnnxProvider, --provider onnx)`,
    );
}

import {
  type SelectedBackend,
  selectBackend,
  stderrLogger,
  TFJS_BACKENDS,
  type TfjsBackendName,
  type TfjsLogger,
} from './backend.js';
import { TfjsInceptionResnetV1Embedder } from './embedder.js';
import { TfjsFaceApiEmbedder } from './faceapi.js';
import { TfjsMtcnnNetworks } from './mtcnn.js';

/** Options of {@link createTfjsProvider}. */
export interface TfjsProviderOptions extends FaceProviderOptions {
  /**
   * Run on this backend only. Default: the first that starts of `tensorflow` (needs the optional peer
   * `@tensorflow/tfjs-node`), `wasm`, `cpu`.
   */
  backend?: TfjsBackendName;
  /** Receives the one line saying which backend runs and why. Default: stderr. */
  logger?: TfjsLogger;
}

/** The object {@link createTfjsProvider} returns: a `FaceProvider` that also tells which backend runs. */
export interface TfjsProvider extends BuiltFaceProvider<'tfjs'> {
  /** The backend this provider runs on and why it was chosen (started once, on first use). */
  backend(): Promise<SelectedBackend>;
}

const PACKAGE = '@facerec/provider-tfjs';

const providerSchema = faceProviderOptionsSchema.extend({
  backend: z
    .string()
    .refine((b) => (TFJS_BACKENDS as readonly string[]).includes(b), {
      error: (issue) =>
        `unknown backend ${JSON.stringify(issue.input)}; valid backends: ${TFJS_BACKENDS.join(', ')}`,
    })
    .optional(),
  logger: z
    .custom<TfjsLogger>((v) => typeof v === 'function', 'expected a function (line: string) => void')
    .optional(),
});

/**
 * The TensorFlow.js provider: facenet-pytorch's MTCNN and InceptionResnetV1 and face-api.js's recognition net
 * as tfjs ops, weights read straight from the upstream checkpoints. Runs on `tensorflow` (tfjs-node), `wasm`
 * or `cpu`, chosen once per provider (see `selectBackend`) and logged in one line. Same model ids, options
 * and results as the onnx provider, so the two are interchangeable.
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
  return tfjsProvider(options, 'the backend option');
}

/** {@link createTfjsProvider}, saying in its log line who chose `backend` (an option or a variable). */
function tfjsProvider(options: TfjsProviderOptions, requestedBy: string): TfjsProvider {
  const settings = parseOptions(providerSchema, options, PACKAGE);
  const logger = settings.logger ?? stderrLogger;
  let selected: Promise<SelectedBackend> | undefined;
  const backend = () => {
    selected ??= selectBackend({
      ...(settings.backend === undefined ? {} : { backend: settings.backend as TfjsBackendName }),
      logger,
      requestedBy,
    });
    return selected;
  };
  const provider = createFaceProvider({
    name: 'tfjs',
    registry: settings.registry,
    modelStore: settings.modelStore,
    detectors: [
      implementMtcnn(async (context) => {
        const [s, b] = await Promise.all([context.modelStore(), backend()]);
        return TfjsMtcnnNetworks.load(s, b.name);
      }),
    ],
    embedders: [
      implementEmbedder(INCEPTION_RESNET_V1, async (o, context) => {
        onlyFp32(o.precision, INCEPTION_RESNET_V1.id);
        const [s, b] = await Promise.all([context.modelStore(), backend()]);
        return TfjsInceptionResnetV1Embedder.load(s, o.weights ?? 'vggface2', {
          backend: b.name,
          maxBatchSize: o.maxBatchSize,
        });
      }),
      implementEmbedder(FACEAPI_RESNET, async (o, context) => {
        onlyFp32(o.precision, FACEAPI_RESNET.id);
        const [s, b] = await Promise.all([context.modelStore(), backend()]);
        return TfjsFaceApiEmbedder.load(s, { backend: b.name, maxBatchSize: o.maxBatchSize });
      }),
    ],
  });
  return { ...provider, backend };
}

/** The variable that picks the backend for the CLI, `facerec serve` and the Lambda functions. */
export const TFJS_BACKEND_ENV = 'FACEREC_TFJS_BACKEND';

/**
 * The factory under the name every provider package exports, so the Lambda runtime and the CLI load this
 * provider by its registry name (`tfjs`). TensorFlow.js has no per-call thread setting: `threads` is ignored.
 * The backend is `$FACEREC_TFJS_BACKEND` when set (`tensorflow`, `wasm` or `cpu`: that one only, no fallback),
 * else the first that starts. Its one line saying which goes to `logger` (default stderr).
 */
export const createProvider: ProviderFactory = ({ registry, modelStore, logger } = {}) => {
  const backend = process.env[TFJS_BACKEND_ENV]?.trim() || undefined;
  if (backend !== undefined && !(TFJS_BACKENDS as readonly string[]).includes(backend)) {
    throw new InvalidOptionsError(
      PACKAGE,
      `${TFJS_BACKEND_ENV}=${JSON.stringify(backend.slice(0, 40))} is no backend; valid: ${TFJS_BACKENDS.join(', ')}`,
    );
  }
  return tfjsProvider(
    {
      ...(registry ? { registry } : {}),
      ...(modelStore ? { modelStore } : {}),
      ...(backend ? { backend: backend as TfjsBackendName } : {}),
      ...(logger ? { logger } : {}),
    },
    `$${TFJS_BACKEND_ENV}`,
  );
};
