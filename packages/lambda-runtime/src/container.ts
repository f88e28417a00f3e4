import 'reflect-metadata';
import {
  assertGalleryFitsEmbedder,
  calibrationPrecisionMismatch,
  type FaceDetector,
  type FaceEmbedder,
  type FaceProvider,
  type Gallery,
  type GalleryStore,
  GalleryStoreNotFoundError,
  InvalidOptionsError,
  missingThresholdMessage,
  openGalleryStore,
  resolveThreshold,
  type Transport,
} from '@facerec/framework';
import type { PipelineConfig } from '@facerec/framework/registry';
import { type DependencyContainer, instanceCachingFactory, container as rootContainer } from 'tsyringe';
import { createDetectionHandler, type DetectionHandler } from './detection.js';
import {
  createDynamoDbIdempotencyStore,
  type IdempotencyStore,
  InMemoryIdempotencyStore,
} from './idempotency.js';
import { createLogger, type PipelineLogger } from './logger.js';
import { noMetrics, type PipelineMetrics } from './metrics.js';
import { loadProvider } from './providers.js';
import { createRecognitionHandler } from './recognition.js';
import type { SqsBatchHandler } from './sqs-batch.js';

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
  metrics: Symbol.for('facerec.metrics'),
});

/** Collaborators to use instead of the ones built from the configuration (local runtime, tests). */
export interface PipelineOverrides {
  readonly transport?: Transport;
  readonly logger?: PipelineLogger;
  readonly provider?: FaceProvider;
  readonly gallery?: Gallery;
  readonly idempotency?: IdempotencyStore;
  /** Where the handlers count frames, faces and latencies. Default: nowhere (the Lambda entries publish them). */
  readonly metrics?: PipelineMetrics;
}

async function importSqsTransport(config: PipelineConfig): Promise<Transport> {
  const { assertSqsQueueUrl, createSqsTransport } = await import('@facerec/transport-sqs');
  // At init, so that a queue variable that is no URL fails the deployment's first start, not every request.
  for (const [variable, url] of [
    ['FACEREC_REQUEST_QUEUE_URL', config.requestQueue],
    ['FACEREC_RESPONSE_QUEUE_URL', config.responseQueue],
    ...config.replyQueues.map((url) => ['FACEREC_REPLY_QUEUES', url] as const),
  ] as const) {
    assertSqsQueueUrl(url, variable);
  }
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
  c.register(TOKENS.metrics, { useValue: overrides.metrics ?? noMetrics });
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
      overrides.provider
        ? Promise.resolve(overrides.provider)
        : loadProvider(config.provider, { registry: config.registry, threads: config.threads }),
    ),
  });
  c.register(TOKENS.detector, {
    useFactory: instanceCachingFactory(async (deps) => {
      const provider = await deps.resolve<Promise<FaceProvider>>(TOKENS.provider);
      const detector = provider.detector(config.detector, config.detectorOptions);
      await detector.ready();
      return detector;
    }),
  });
  c.register(TOKENS.embedder, {
    useFactory: instanceCachingFactory(async (deps) => {
      const provider = await deps.resolve<Promise<FaceProvider>>(TOKENS.provider);
      return provider.embedder(config.embedder.description.id, config.embedder.options);
    }),
  });
  c.register(TOKENS.gallery, {
    // Not kept when it fails: a gallery not uploaded yet, or a store out of reach, can be there at the next try
    // (see the Lambda entries), with the embedder loaded once.
    useFactory: cachingUntilRejected(async (deps) => {
      // The model loads while the gallery opens.
      const loading = deps.resolve<Promise<FaceEmbedder>>(TOKENS.embedder);
      loading.catch(() => undefined); // awaited below, or by whoever resolves the embedder
      let gallery: Gallery;
      // The store this factory opened (not one passed in), to be closed if it cannot be used.
      let opened: GalleryStore | undefined;
      if (overrides.gallery) gallery = overrides.gallery;
      else if (config.gallery) {
        // A path, s3:// or postgres:// URL; stores that change are re-checked every refreshSeconds.
        gallery = opened = await openGalleryStore(config.gallery, {
          refreshSeconds: config.galleryStore.refreshSeconds,
          ...(config.galleryStore.s3Endpoint ? { s3Endpoint: config.galleryStore.s3Endpoint } : {}),
          logger: deps.resolve<PipelineLogger>(TOKENS.logger),
        }).catch((error: unknown) => {
          // The library's hint (open it with `create: true`) is not the operator's: say what to do here.
          if (!GalleryStoreNotFoundError.isInstance(error)) throw error;
          throw new GalleryStoreNotFoundError(
            error.location,
            ' (FACEREC_GALLERY: upload a gallery there, or create it with `facerec gallery add <store> …`; tried again every 10 s)',
          );
        });
      } else {
        throw new InvalidOptionsError(
          '@facerec/lambda-runtime configuration',
          'FACEREC_GALLERY is required for recognition',
        );
      }
      try {
        // Against the registry's description first, without the model: a gallery of another embedder is said as
        // such, not as whatever loading the configured model fails with (the default embedder's weights missing
        // when FACEREC_EMBEDDER was left unset for a faceapi-resnet gallery). Then the weights, which only the
        // loaded model knows; from then on a store that reloads refuses versions that are not the model's.
        assertGalleryFitsEmbedder(
          { source: config.gallery ?? 'gallery', embedder: gallery.embedder, identities: 0 },
          config.embedder,
        );
        gallery.assertCompatible(await loading);
      } catch (error) {
        // A store opened here is closed (its S3 client, its Postgres pool): a failed start is tried again every
        // 10 s while the bucket holds another embedder's gallery.
        await opened?.close().catch(() => undefined);
        throw error;
      }
      return gallery;
    }),
  });
  c.register(TOKENS.idempotency, {
    // Not kept when the table check fails: access not granted yet (IAM takes a moment) can pass, and the Lambda
    // entry tries the start again.
    useFactory: cachingUntilRejected(async (): Promise<IdempotencyStore> => {
      if (overrides.idempotency) return overrides.idempotency;
      const { table, ttlSeconds, endpoint } = config.idempotency;
      // Without a table each process remembers its own answers: enough for the local runtime (one process),
      // not across Lambda containers.
      if (!table) return new InMemoryIdempotencyStore({ ttlMs: ttlSeconds * 1000 });
      const store = await createDynamoDbIdempotencyStore({
        table,
        ttlSeconds,
        ...(config.region ? { region: config.region } : {}),
        ...(endpoint ? { endpoint } : {}),
      });
      // At start, so that a wrong table or a missing permission is one clear line, not every face failing.
      await store.check().catch((error: unknown) => {
        store.close();
        throw error;
      });
      return store;
    }),
  });
  return c;
}

/** Resolves the detection handler and everything it needs (models loaded before it resolves). */
export async function composeDetection(c: DependencyContainer): Promise<DetectionHandler> {
  const config = c.resolve<PipelineConfig>(TOKENS.config);
  const [detector, transport] = await Promise.all([
    c.resolve<Promise<FaceDetector>>(TOKENS.detector),
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
    // The recognition embedder's crop policy, from the registry: detection never loads the embedder.
    crop: config.embedder.description.preprocessing.crop,
    transport,
    requestQueue: config.requestQueue,
    responseQueue: config.responseQueue,
    replyQueues: config.replyQueues,
    maxFaces: config.maxFaces,
    maxBodyBytes: config.maxBodyBytes,
    decodeLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
    logger,
    metrics: c.resolve<PipelineMetrics>(TOKENS.metrics),
  });
}

/**
 * Like tsyringe's `instanceCachingFactory` for a factory of a promise, except that a promise that rejects is
 * forgotten, so that the next resolution runs the factory again (tsyringe's would hand back the rejection).
 */
function cachingUntilRejected<T>(
  factory: (deps: DependencyContainer) => Promise<T>,
): (deps: DependencyContainer) => Promise<T> {
  let cached: Promise<T> | undefined;
  return (deps) =>
    (cached ??= factory(deps).catch((error: unknown) => {
      cached = undefined;
      throw error;
    }));
}

/** Resolves the recognition handler and everything it needs (models and gallery loaded first). */
export async function composeRecognition(c: DependencyContainer): Promise<SqsBatchHandler> {
  const config = c.resolve<PipelineConfig>(TOKENS.config);
  const rest = Promise.all([
    c.resolve<Promise<FaceEmbedder>>(TOKENS.embedder),
    c.resolve<Promise<Transport>>(TOKENS.transport),
    c.resolve<Promise<IdempotencyStore>>(TOKENS.idempotency),
  ]);
  rest.catch(() => undefined); // awaited below, once the gallery is there
  // The gallery's failure first (all load at once): one of another embedder is the cause to report, not the
  // failure to load a model it cannot be matched with.
  const gallery = await c.resolve<Promise<Gallery>>(TOKENS.gallery);
  const [embedder, transport, idempotency] = await rest;
  const logger = c.resolve<PipelineLogger>(TOKENS.logger);
  const threshold = matchingThreshold(config, gallery, embedder, logger);
  return createRecognitionHandler({
    embedder,
    gallery,
    threshold,
    transport,
    responseQueue: config.responseQueue,
    replyQueues: config.replyQueues,
    idempotency,
    logger,
    metrics: c.resolve<PipelineMetrics>(TOKENS.metrics),
  });
}

/**
 * The threshold recognition matches at, resolved for every batch (before and after its match: see
 * `createRecognitionHandler`), so that a gallery recalibrated while the function runs (a file or S3 gallery that
 * reloads, a Postgres collection whose settings are read again) is matched at its new threshold as soon as the
 * store has it: FACEREC_THRESHOLD, else the gallery's own (calibrated, or set at enrollment; `undefined` is
 * returned, so the gallery's current value is used), else — a gallery never calibrated would answer `unknown`
 * for every face — the embedder's recommended threshold from the registry. A change of the threshold in use is
 * logged; what is worth a warning (no calibration; one made at another embedder precision than the embedder
 * runs at) is logged at init and again when the threshold or the calibration changes.
 */
function matchingThreshold(
  config: PipelineConfig,
  gallery: Gallery,
  embedder: FaceEmbedder,
  logger: PipelineLogger,
): () => number | undefined {
  const { modelId } = gallery.embedder;
  const servedAt = embedder.precision ?? 'fp32';
  let reported: string | undefined;
  let reportedCalibration: string | undefined;
  let previous: { value?: number; source?: string } | undefined;
  const resolve = () => {
    const threshold = resolveThreshold({
      explicit: config.threshold,
      gallery,
      registry: config.registry,
      modelId,
      metric: gallery.metric,
    });
    const state = JSON.stringify([threshold?.source, threshold?.value]);
    const calibration = gallery.calibration?.calibratedAt;
    if (state !== reported || calibration !== reportedCalibration) {
      if (reported !== undefined && state !== reported) {
        logger.info('matching threshold changed', {
          threshold: threshold?.value,
          source: threshold?.source,
          previous_threshold: previous?.value,
          previous_source: previous?.source,
        });
      }
      reported = state;
      previous = { ...(threshold ? { value: threshold.value, source: threshold.source } : {}) };
      reportedCalibration = calibration;
      if (threshold?.source === 'registry') {
        logger.warn("gallery never calibrated: matching at the embedder's recommended threshold", {
          modelId,
          metric: gallery.metric,
          threshold: threshold.value,
        });
      } else if (!threshold) {
        logger.warn('gallery never calibrated and no recommended threshold: every face will be unknown', {
          modelId,
          reason: missingThresholdMessage(config.registry, modelId, gallery.metric),
        });
      } else if (threshold.source === 'gallery') {
        // A threshold calibrated on int8 embeddings and served at fp32, or the other way round (FACEREC_PRECISION).
        const mismatch = calibrationPrecisionMismatch(gallery.calibration, servedAt);
        if (mismatch) {
          logger.warn('gallery threshold calibrated at another embedder precision', {
            calibrationPrecision: gallery.calibration?.precision,
            embedderPrecision: servedAt,
            reason: mismatch,
          });
        }
      }
    }
    return threshold?.source === 'gallery' ? undefined : threshold?.value;
  };
  resolve(); // the warnings at init
  return resolve;
}
