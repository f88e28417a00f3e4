import 'reflect-metadata';
import {
  type FaceEmbedder,
  FileGallery,
  type Gallery,
  InvalidOptionsError,
  type MtcnnDetector,
  type MtcnnOptions,
  type Transport,
} from '@facerec/framework';
import { type DependencyContainer, instanceCachingFactory, container as rootContainer } from 'tsyringe';
import type { PipelineConfig } from './config.js';
import { createDetectionHandler, type FunctionUrlEvent, type FunctionUrlResult } from './detection.js';
import { type IdempotencyStore, InMemoryIdempotencyStore } from './idempotency.js';
import { createLogger, type PipelineLogger } from './logger.js';
import { createRecognitionHandler, type SqsBatchResponse, type SqsEvent } from './recognition.js';

/** What the pipeline needs from an inference provider; `@facerec/provider-onnx` and `-tfjs` both fit. */
export interface PipelineProvider {
  detector(modelId: 'mtcnn', options?: MtcnnOptions): MtcnnDetector;
  embedder(modelId: string, options?: Record<string, unknown>): Promise<FaceEmbedder>;
}

/**
 * Injection tokens of the composition root. Dependency injection stays here: the handlers and the library
 * classes take their collaborators as plain arguments and work without a container.
 */
export const TOKENS = Object.freeze({
  config: Symbol.for('facerec.config'),
  logger: Symbol.for('facerec.logger'),
  transport: Symbol.for('facerec.transport'),
  provider: Symbol.for('facerec.provider'),
  detector: Symbol.for('facerec.detector'),
  embedder: Symbol.for('facerec.embedder'),
  gallery: Symbol.for('facerec.gallery'),
  idempotency: Symbol.for('facerec.idempotency'),
});

/** The crop side each embedder takes; the detector cuts crops at this size. */
export const EMBEDDER_INPUT_SIZE: Readonly<Record<PipelineConfig['embedder'], number>> = Object.freeze({
  'inception-resnet-v1': 160,
  'faceapi-resnet': 150,
});

/** Collaborators to use instead of the ones built from the configuration (local runtime, tests). */
export interface PipelineOverrides {
  readonly transport?: Transport;
  readonly logger?: PipelineLogger;
  readonly provider?: PipelineProvider;
  readonly gallery?: Gallery;
  readonly idempotency?: IdempotencyStore;
}

async function importProvider(config: PipelineConfig): Promise<PipelineProvider> {
  // Providers are optional peer dependencies: import only the one configured, and say how to get it.
  try {
    if (config.provider === 'onnx') {
      const { createOnnxProvider } = await import('@facerec/provider-onnx');
      const threads = config.threads === undefined ? {} : { intraOpNumThreads: config.threads };
      return createOnnxProvider(threads) as unknown as PipelineProvider;
    }
    const { createTfjsProvider } = await import('@facerec/provider-tfjs');
    return createTfjsProvider() as unknown as PipelineProvider;
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    throw new InvalidOptionsError(
      '@facerec/lambda-runtime configuration',
      `FACEREC_PROVIDER=${config.provider} needs @facerec/provider-${config.provider}; install it`,
      { cause },
    );
  }
}

async function importSqsTransport(config: PipelineConfig): Promise<Transport> {
  const { createSqsTransport } = await import('@facerec/transport-sqs');
  return createSqsTransport({
    ...(config.region ? { region: config.region } : {}),
    ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}),
  });
}

/**
 * Builds the container for one process (one Lambda container, or the local runtime). Everything expensive is
 * registered as a memoised promise and starts on first resolve — at cold start when the entry module
 * resolves it — never per request.
 */
export function createPipelineContainer(
  config: PipelineConfig,
  overrides: PipelineOverrides = {},
): DependencyContainer {
  const c = rootContainer.createChildContainer();
  c.register(TOKENS.config, { useValue: config });
  c.register(TOKENS.logger, {
    useFactory: instanceCachingFactory(() => overrides.logger ?? createLogger('facerec')),
  });
  c.register(TOKENS.transport, {
    useFactory: instanceCachingFactory(() =>
      overrides.transport ? Promise.resolve(overrides.transport) : importSqsTransport(config),
    ),
  });
  c.register(TOKENS.provider, {
    useFactory: instanceCachingFactory(() =>
      overrides.provider ? Promise.resolve(overrides.provider) : importProvider(config),
    ),
  });
  c.register(TOKENS.detector, {
    useFactory: instanceCachingFactory(async (deps) => {
      const provider = await deps.resolve<Promise<PipelineProvider>>(TOKENS.provider);
      const detector = provider.detector('mtcnn', {
        minFaceSize: config.minFaceSize,
        imageSize: EMBEDDER_INPUT_SIZE[config.embedder],
        // face-api.js's net was trained on unstretched faces: crop a square around each box for it.
        cropShape: config.embedder === 'faceapi-resnet' ? 'square' : 'box',
      });
      await detector.ready();
      return detector;
    }),
  });
  c.register(TOKENS.embedder, {
    useFactory: instanceCachingFactory(async (deps) => {
      const provider = await deps.resolve<Promise<PipelineProvider>>(TOKENS.provider);
      return config.embedder === 'inception-resnet-v1'
        ? provider.embedder('inception-resnet-v1', { weights: config.weights })
        : provider.embedder('faceapi-resnet');
    }),
  });
  c.register(TOKENS.gallery, {
    useFactory: instanceCachingFactory(async (deps) => {
      const embedder = await deps.resolve<Promise<FaceEmbedder>>(TOKENS.embedder);
      let gallery: Gallery;
      if (overrides.gallery) gallery = overrides.gallery;
      else if (config.gallery) gallery = await FileGallery.load(config.gallery);
      else {
        throw new InvalidOptionsError(
          '@facerec/lambda-runtime configuration',
          'FACEREC_GALLERY is required for recognition',
        );
      }
      if (gallery instanceof FileGallery) {
        gallery.assertCompatible(embedder);
        if (config.threshold !== undefined) gallery = gallery.withThreshold(config.threshold);
      }
      return gallery;
    }),
  });
  c.register(TOKENS.idempotency, {
    useFactory: instanceCachingFactory(() => overrides.idempotency ?? new InMemoryIdempotencyStore()),
  });
  return c;
}

/** Resolves the detection handler and everything it needs (models loaded before it resolves). */
export async function composeDetection(
  c: DependencyContainer,
): Promise<(event: FunctionUrlEvent) => Promise<FunctionUrlResult>> {
  const config = c.resolve<PipelineConfig>(TOKENS.config);
  const [detector, transport] = await Promise.all([
    c.resolve<Promise<MtcnnDetector>>(TOKENS.detector),
    c.resolve<Promise<Transport>>(TOKENS.transport),
  ]);
  const logger = c.resolve<PipelineLogger>(TOKENS.logger);
  if (config.warmUp) {
    const started = performance.now();
    await detector.warmUp(config.warmUp);
    logger.info('detector warmed up', { ...config.warmUp, ms: Math.round(performance.now() - started) });
  }
  return createDetectionHandler({
    detector,
    transport,
    requestQueue: config.requestQueue,
    responseQueue: config.responseQueue,
    maxFaces: config.maxFaces,
    maxBodyBytes: config.maxBodyBytes,
    decodeLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
    logger,
  });
}

/** Resolves the recognition handler and everything it needs (models and gallery loaded first). */
export async function composeRecognition(
  c: DependencyContainer,
): Promise<(event: SqsEvent) => Promise<SqsBatchResponse>> {
  const config = c.resolve<PipelineConfig>(TOKENS.config);
  const [embedder, gallery, transport] = await Promise.all([
    c.resolve<Promise<FaceEmbedder>>(TOKENS.embedder),
    c.resolve<Promise<Gallery>>(TOKENS.gallery),
    c.resolve<Promise<Transport>>(TOKENS.transport),
  ]);
  return createRecognitionHandler({
    embedder,
    gallery,
    transport,
    responseQueue: config.responseQueue,
    idempotency: c.resolve<IdempotencyStore>(TOKENS.idempotency),
    logger: c.resolve<PipelineLogger>(TOKENS.logger),
  });
}
