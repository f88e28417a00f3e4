import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  defaultCacheDir,
  type FaceDetector,
  type FaceEmbedder,
  FacerecError,
  InvalidOptionsError,
  identityNameIssue,
  MODELS,
  type ModelRegistry,
} from '@facerec/framework';
import { makeFolder, unreachableCode } from '@facerec/framework/internal';
import {
  assertTokenWhereNeeded,
  BODY_LIMITS,
  composeDetection,
  composeRecognition,
  createCollectionsApi,
  createLogger,
  createPipelineContainer,
  createPrometheusMetrics,
  createWorkerProvider,
  DEFAULT_MAX_IN_FLIGHT_PIXELS,
  type DrainOptions,
  type DrainReport,
  formatWorkloadReport,
  INTERRUPT_GRACE_MS,
  jsonSender,
  LOCAL_METRICS,
  type LocalRuntimeBacklog,
  loadConfig,
  loadFrames,
  localResponses,
  MAX_FRAME_FILE_BYTES,
  MIN_NETWORK_TOKEN_LENGTH,
  PIPELINE_VARIABLES,
  queueResponses,
  runWorkload,
  startLocalRuntime,
  TOKENS,
  type WorkerProvider,
} from '@facerec/lambda-runtime';
import { type DeadLettered, InMemoryQueueTransport, openSqliteQueueJournal } from '@facerec/transport-memory';
import { type Command, Option } from 'commander';
import { type ImageLimitFlags, imageLimitsFlag, maxImagePixelsOption } from '../images.js';
import {
  count,
  galleryThreshold,
  info,
  numberFlag,
  openExistingGallery,
  positiveInteger,
  storedThreshold,
  thresholdSummary,
  workersFlag,
} from '../output.js';
import {
  type CliContext,
  precisionOption,
  providerOption,
  selectProvider,
  weightsOption,
  workersWithOwnRegistry,
} from '../providers.js';
import { sigV4Sender } from '../sigv4.js';
import { minFaceSizeOption, minFaceSizeOptions } from './detect.js';
import { openCliGalleryStore } from './gallery-store.js';

const REQUESTS = 'requests';
/** Deliveries of a face before it goes to the dead-letter queue, 30 s apart (as the reference stack's SQS). */
const MAX_DELIVERIES = 5;
const RESPONSES = 'responses';
/** Where a face goes after {@link MAX_DELIVERIES} deliveries without an answer (its depth is in `GET /health`). */
const DEAD_LETTERS = `${REQUESTS}-dlq`;

/** What a frame's JSON needs beside its image. */
const FRAME_JSON_BYTES = 64 * 1024;
/** The largest image a frame can carry in the largest body: `serve --max-image-bytes`'s ceiling. */
const SERVE_MAX_IMAGE_BYTES = Math.floor(((BODY_LIMITS.max - FRAME_JSON_BYTES) * 3) / 4);

/**
 * The request body that carries an image of `maxImageBytes` as a frame: its base64 (4 characters per 3 bytes)
 * and 64 KiB for the rest of the JSON; never below Lambda's 6 MiB.
 */
function bodyLimitFor(maxImageBytes: number): number {
  return Math.min(
    BODY_LIMITS.max,
    Math.max(BODY_LIMITS.default, 4 * Math.ceil(maxImageBytes / 3) + FRAME_JSON_BYTES),
  );
}

/** The warm-up frame (`FACEREC_WARMUP`) for a pixel limit: 1280×720, shrunk to fit a smaller limit. */
function warmUpWithin(maxPixels: number): string {
  const scale = Math.min(1, Math.sqrt(maxPixels / (1280 * 720)));
  return `${Math.floor(1280 * scale)}x${Math.floor(720 * scale)}`;
}

/** Options of {@link serveLocally}. */
export interface ServeOptions {
  /** The gallery store: a file path, `s3://…` or `postgres://…` (see `openGalleryStore`). */
  readonly gallery: string;
  /** How often a file or S3 gallery is re-checked for another writer's changes, in seconds. Default 1. */
  readonly reloadSeconds?: number;
  /**
   * With `token`: the gallery is served as `/collections/{collection}/faces`. Default: a Postgres gallery's own
   * collection name, else `default`; a Postgres gallery is served only under its own name.
   */
  readonly collection?: string;
  readonly port?: number;
  /** Address to listen on. Default `127.0.0.1` (this machine only). */
  readonly host?: string;
  /** Bearer token every request must carry; required when `host` is not loopback. */
  readonly token?: string;
  readonly provider?: string;
  /** Checkpoint path, for a gallery built from a local `.pt` file (the embedder is read from the gallery). */
  readonly weights?: string;
  /**
   * The embedder's precision, as `FACEREC_PRECISION` on Lambda: `int8` runs the onnx provider's int8 graph
   * (faceapi-resnet's shipped ranges, or calibrated on the faces in `$FACEREC_CALIBRATION_DIR`). Default `fp32`.
   */
  readonly precision?: 'fp32' | 'int8';
  readonly threshold?: number;
  readonly consumers?: number;
  /**
   * Inference worker threads (see `createWorkerProvider`): detection and recognition of different frames run
   * at the same time, each worker with its share of the cores. 0 runs them on the main thread. Default 0.
   */
  readonly workers?: number;
  /** Admission control (see `LocalRuntimeOptions.maxInFlight`, `maxQueueDepth`, `maxInFlightPixels`). */
  readonly maxInFlight?: number;
  readonly maxQueueDepth?: number;
  readonly maxInFlightPixels?: number;
  /** Time a client has to send a whole request (see `LocalRuntimeOptions.requestTimeoutMs`). Default 30 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Faces per frame sent on for recognition, largest first, as `FACEREC_MAX_FACES` on Lambda. Default 32. */
  readonly maxFaces?: number;
  /** MTCNN's `minFaceSize`, as `FACEREC_MIN_FACE_SIZE` on Lambda (a whole number, 12–4096). Default 20. */
  readonly minFaceSize?: number;
  /**
   * The frames' decoding limits, as `FACEREC_MAX_IMAGE_BYTES` / `FACEREC_MAX_IMAGE_PIXELS` on Lambda (for the
   * collections API's photos too); each omitted one is `DEFAULT_DECODE_LIMITS`'. With `maxBytes` (at most
   * 50,282,496), request bodies may be as large as such an image in base64 plus 64 KiB (at least Lambda's 6 MiB);
   * without it they are limited to 6 MiB, as on a Function URL.
   */
  readonly imageLimits?: DecodeLimits;
  /**
   * Where the queues live: a SQLite file, so that a server killed at any moment loses no accepted frame and,
   * restarted on the same file, answers each once; or `'memory'`. Default `'memory'` (`facerec serve`
   * defaults to a file, {@link defaultQueueFile}).
   */
  readonly queue?: string;
  readonly quiet?: boolean;
  /** The models to choose from. Default: the built-in registry. */
  readonly registry?: ModelRegistry;
}

/**
 * Starts the embedded default: the same detection and recognition handlers as on Lambda, composed by the
 * same composition root, over an in-process queue with SQS semantics. The embedder is the one the gallery
 * was built with (read from its model id through the registry), so the two cannot disagree.
 */
export async function serveLocally(options: ServeOptions) {
  const registry = options.registry ?? MODELS;
  // The collections API's name is one path segment: checked as identity names are (`''` served it nowhere).
  if (options.collection !== undefined) {
    const name = options.collection;
    const issue = name === '' ? 'is empty' : name.includes('/') ? 'holds a "/"' : identityNameIssue(name);
    if (issue)
      throw new InvalidOptionsError('serve', `--collection ${issue}: it names /collections/<name>/faces`);
  }
  // The Lambda functions' variables configure the functions, not this server (its flags do): one set here was
  // probably meant for it, and is said to be ignored. FACEREC_S3_ENDPOINT is read, as by every command.
  const ignored = PIPELINE_VARIABLES.filter(
    (name) => name.startsWith('FACEREC_') && name !== 'FACEREC_S3_ENDPOINT' && process.env[name],
  );
  if (ignored.length) {
    info(
      `facerec serve: ignoring ${ignored.join(', ')}: the Lambda functions' settings; serve takes its own as flags (facerec serve --help)`,
    );
  }
  // A port in use is said at once, not after the models load (seconds to minutes); the runtime's own listen
  // still reports one taken meanwhile.
  if (options.port) await assertPortFree(options.port, options.host ?? '127.0.0.1');
  // --quiet drops the per-request lines, not the warnings and errors (a worker restarted, a failed publish).
  const logger = createLogger('facerec-local', options.quiet ? 'WARN' : undefined);
  // Seconds before it listens (15 s for a 480 MiB gallery file), which would otherwise pass without a word.
  info('facerec serve: starting: opening the gallery, loading the models, warming up…');
  // A store that may change while serving (`facerec gallery add`, the collections API): searched as it is. A
  // new version that cannot be used (corrupt, another embedder) is refused and the loaded one kept, with a
  // warning, logged.
  const gallery = await openExistingGallery(
    () => openCliGalleryStore(options.gallery, { refreshSeconds: options.reloadSeconds ?? 1, logger }),
    options.gallery,
  );
  // A Postgres gallery has a name of its own: served under another, the API would say one collection and write
  // to another.
  const ownName = (gallery as Partial<{ collection: string }>).collection;
  if (options.collection !== undefined && ownName !== undefined && options.collection !== ownName) {
    await gallery.close();
    throw new InvalidOptionsError(
      'serve',
      `--collection ${options.collection}: the gallery is the Postgres collection "${ownName}", served under that ` +
        `name; leave --collection out (or serve ?collection=${options.collection})`,
    );
  }
  const collection = options.collection ?? ownName ?? 'default';
  // A gallery never calibrated is served at the embedder's recommended threshold (one stderr line says so). A
  // threshold calibrated at the other precision is logged as a warning by the recognition function's init.
  // Named by its location: a database URL there has its password removed.
  const threshold = galleryThreshold(gallery, gallery.location, registry, { explicit: options.threshold });
  // Only --threshold is fixed: the recognition function resolves the gallery's (or, uncalibrated, the
  // registry's) for every batch, so a gallery recalibrated while serving is matched at its new threshold.
  const override = threshold.source === 'option' ? threshold.value : undefined;
  const { description, settings } = registry.embedderForModelId(gallery.embedder.modelId, {
    weights: options.weights,
  });
  const { maxBytes, maxPixels } = options.imageLimits ?? {};
  if (maxBytes !== undefined && maxBytes > SERVE_MAX_IMAGE_BYTES) {
    throw new InvalidOptionsError(
      'serve',
      `image limit of ${maxBytes} bytes: a frame carries its image in base64 in a request of at most ${BODY_LIMITS.max} bytes, so at most ${SERVE_MAX_IMAGE_BYTES} bytes of image`,
    );
  }
  const config = loadConfig(
    {
      FACEREC_PROVIDER: options.provider ?? registry.defaults.provider,
      FACEREC_EMBEDDER: description.id,
      FACEREC_WEIGHTS: settings.weights,
      FACEREC_REQUEST_QUEUE_URL: REQUESTS,
      FACEREC_RESPONSE_QUEUE_URL: RESPONSES,
      FACEREC_GALLERY: options.gallery,
      ...(options.precision ? { FACEREC_PRECISION: options.precision } : {}),
      ...(override !== undefined ? { FACEREC_THRESHOLD: String(override) } : {}),
      ...(options.maxFaces === undefined ? {} : { FACEREC_MAX_FACES: String(options.maxFaces) }),
      ...(options.minFaceSize === undefined ? {} : { FACEREC_MIN_FACE_SIZE: String(options.minFaceSize) }),
      ...(maxBytes === undefined
        ? {}
        : {
            FACEREC_MAX_IMAGE_BYTES: String(maxBytes),
            FACEREC_MAX_BODY_BYTES: String(bodyLimitFor(maxBytes)),
          }),
      ...(maxPixels === undefined
        ? {}
        : {
            FACEREC_MAX_IMAGE_PIXELS: String(maxPixels),
            // The detector warms up on a 1280×720 frame, or on the largest 16:9 frame the pixel limit lets in.
            FACEREC_WARMUP: warmUpWithin(maxPixels),
          }),
    },
    registry,
  );
  const queue = options.queue ?? 'memory';
  // A face delivered 5 times without an answer (recognition failing for 2.5 minutes: a store's server down)
  // goes to the dead-letter queue: its frame gets no answer for it, which is said and counted.
  let deadLettered = 0;
  // GET /metrics: the handlers' metrics, the runtime's, Node's, and the faces dead-lettered.
  const prometheus = createPrometheusMetrics({
    info: { provider: config.provider, embedder: gallery.embedder.modelId, precision: config.precision },
  });
  const onDeadLetter = ({ messages, deadLetterQueue }: DeadLettered) => {
    deadLettered += messages.length;
    prometheus.add(LOCAL_METRICS.facesDeadLettered, 'Count', messages.length);
    const ids = messages.map(({ body }) => {
      try {
        const { request_id, face_index } = JSON.parse(body) as { request_id?: unknown; face_index?: unknown };
        return `${String(request_id)}#${String(face_index)}`;
      } catch {
        return '(not a face message)';
      }
    });
    logger.error('faces dead-lettered: their frames get no answer for them', {
      faces: ids.slice(0, 20),
      count: messages.length,
      receives: messages[0]?.receiveCount,
      queue: deadLetterQueue,
    });
  };
  const transport = new InMemoryQueueTransport({
    onDeadLetter,
    queues: {
      [REQUESTS]: {
        visibilityTimeoutSeconds: 30,
        maxReceiveCount: MAX_DELIVERIES,
        deadLetterQueue: DEAD_LETTERS,
      },
      // One answer per face id (its idempotency key) within an hour: a face processed again after a crash (its
      // answer queued, its request not yet acknowledged) is not answered twice.
      [RESPONSES]: { deduplicationWindowSeconds: 3600 },
    },
    ...(queue === 'memory' ? {} : { journal: await openSqliteQueueJournal(queue) }),
  });
  const workers = options.workers ?? 0;
  if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
    throw new InvalidOptionsError(
      'serve',
      `--workers must be "auto" or an integer from 0 to 64, got ${workers}`,
    );
  }
  const provider =
    workers > 0
      ? await createWorkerProvider({
          provider: config.provider,
          workers,
          registry,
          logger,
          ...(options.quiet ? { quiet: true } : {}),
        }).catch(async (error: unknown) => {
          await transport.close();
          throw error;
        })
      : await selectProvider({ registry }, config.provider, options.quiet ? { logger: () => {} } : {});
  // A start that fails past this point releases what it opened: worker threads and a gallery left open
  // would keep the process alive after the error was printed.
  // The fp32 embedder the collections API adds faces with when recognition runs at int8 (see below).
  let fp32ForAdds: FaceEmbedder | undefined;
  const release = async () => {
    await fp32ForAdds?.dispose();
    if ('close' in provider) await (provider as WorkerProvider).close();
    await transport.close(); // releases the queue file
    await gallery.close();
  };
  const container = createPipelineContainer(config, {
    transport,
    logger,
    gallery,
    provider,
    metrics: prometheus,
  });
  const [detection, recognition] = await Promise.all([
    composeDetection(container),
    composeRecognition(container),
  ]).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  const port = options.port ?? 3000;
  // With a token, people can be added and removed over HTTP (the collections API) while serving. Faces added are
  // embedded at fp32 whatever recognition runs at, as `enroll` and `gallery add` embed them: a gallery's examples
  // are fp32 (its leave-one-out calibration says so), so an int8 recognizer loads the fp32 graph for adds too.
  let addEmbedder: FaceEmbedder | undefined;
  if (options.token && config.precision === 'int8') {
    addEmbedder = fp32ForAdds = await provider
      .embedder(config.embedder.description.id, { ...config.embedder.options, precision: 'fp32' })
      .catch(async (error: unknown) => {
        await release();
        throw error;
      });
  } else if (options.token) {
    addEmbedder = await container.resolve<Promise<FaceEmbedder>>(TOKENS.embedder);
  }
  const collections = addEmbedder
    ? createCollectionsApi({
        collections: { [collection]: gallery },
        detector: await container.resolve<Promise<FaceDetector>>(TOKENS.detector),
        embedder: addEmbedder,
        // As recognition matches: --threshold, else the gallery's as it is now (or the recommended one).
        threshold: (store) => override ?? storedThreshold(store, registry)?.value,
        decodeLimits: { maxBytes: config.maxImageBytes, maxPixels: config.maxImagePixels },
        logger,
      })
    : undefined;
  const runtime = await startLocalRuntime({
    detection,
    recognition,
    transport,
    requestQueue: REQUESTS,
    responseQueue: RESPONSES,
    deadLetterQueue: DEAD_LETTERS,
    port,
    ...(options.host ? { host: options.host } : {}),
    ...(options.token ? { token: options.token } : {}),
    ...(collections ? { collections } : {}),
    prometheus: prometheus.registry,
    // GET /health says 503 while the gallery's store cannot be reached (recognition would hand faces back).
    ...(gallery.checkReachable ? { checks: { gallery: () => gallery.checkReachable!() } } : {}),
    consumers: options.consumers ?? 1,
    maxBodyBytes: config.maxBodyBytes,
    maxImagePixels: config.maxImagePixels,
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
    ...(options.maxQueueDepth === undefined ? {} : { maxQueueDepth: options.maxQueueDepth }),
    ...(options.maxInFlightPixels === undefined ? {} : { maxInFlightPixels: options.maxInFlightPixels }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    logger,
  }).catch(async (error: unknown) => {
    await release();
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new InvalidOptionsError('serve', `port ${port} is already in use (choose another with --port)`, {
      cause: error,
    });
  });
  return {
    runtime,
    transport,
    gallery,
    logger,
    /** The name the collections API serves the gallery under (with a token). */
    collection,
    /** Faces moved to the dead-letter queue since the start (each logged): their frames got no answer for them. */
    deadLettered: () => deadLettered,
    /** Stops the server, then the workers, the queues and the gallery. */
    async close() {
      await runtime.close();
      await release();
    },
    /** A graceful stop (`LocalRuntime.drain`), then the workers, the queues and the gallery. */
    async drain(drainOptions: DrainOptions): Promise<DrainReport> {
      try {
        return await runtime.drain(drainOptions);
      } finally {
        await release();
      }
    },
  };
}

/** Refuses a port another process listens on, by listening on it for a moment. */
async function assertPortFree(port: number, host: string): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolve()));
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error;
    throw new InvalidOptionsError('serve', `port ${port} is already in use (choose another with --port)`, {
      cause: error,
    });
  });
}

/** Whether a backlog holds anything. */
const pending = (backlog: LocalRuntimeBacklog): boolean =>
  backlog.detecting + backlog.recognising + backlog.uncollected + backlog.adding > 0;

/** "2 frames being detected, 1 answer not collected": the parts of a backlog that are not empty. */
function describeBacklog(backlog: LocalRuntimeBacklog): string {
  const parts = [
    backlog.detecting ? `${count(backlog.detecting, 'frame')} being detected` : '',
    backlog.recognising ? `${count(backlog.recognising, 'face')} being recognised` : '',
    backlog.uncollected ? `${count(backlog.uncollected, 'answer')} not collected` : '',
    backlog.adding ? `${count(backlog.adding, 'face')} being added to the gallery` : '',
  ].filter(Boolean);
  return parts.join(', ');
}

/** After a second Ctrl-C, how long the rest of the stop (workers, queues, gallery) may take before the exit. */
const FORCED_STOP_MS = 2_000;

/**
 * `facerec serve` until Ctrl-C (or SIGTERM), then a graceful stop: frames get 503 while those taken are
 * answered and clients collect the answers, for at most `drainSeconds`; a second Ctrl-C stops at once (what
 * follows the drain gets {@link FORCED_STOP_MS}), a third at that very moment.
 */
async function serveUntilStopped(
  served: Awaited<ReturnType<typeof serveLocally>>,
  drainSeconds: number,
  queue: string,
): Promise<void> {
  // One listener for the whole stop, never removed and added again: in between, a signal found no listener of
  // ours, and signal-exit (the temporary-file cleanup) took it for an unhandled one and removed the temporary
  // file of a gallery write still running.
  let signals = 0;
  let stopAsked!: () => void;
  const stopping = new Promise<void>((resolve) => (stopAsked = resolve));
  const again = new AbortController();
  const onSignal = () => {
    signals++;
    if (signals === 1) return stopAsked();
    again.abort();
    // The drain ends at once; what follows it (workers, queues, the gallery) gets a moment, then the process
    // ends whatever still runs (a store that does not answer).
    if (signals === 2) {
      // A stop cut short exits 130 however quickly the rest ends: a script can tell it from a clean stop.
      process.exitCode = 130;
      setTimeout(() => {
        info('facerec serve: stopped at once (signalled again); what was still running was abandoned');
        process.exit(130);
      }, FORCED_STOP_MS).unref();
    } else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await stopping;
  const backlog = served.runtime.backlog();
  // In the JSON log too (the lines below are stderr's plain text): a log pipeline sees the drain begin and end.
  served.logger.info('stopping: no new frames', { drain_seconds: drainSeconds, ...backlog });
  if (drainSeconds > 0 && pending(backlog)) {
    info(
      `facerec serve: stopping: no new frames; waiting up to ${drainSeconds} s for ${describeBacklog(backlog)} (Ctrl-C or SIGTERM again stops at once)`,
    );
  }
  const { drained, left, cutOff, answersDropped, addsCutOff } = await served.drain({
    timeoutMs: drainSeconds * 1000,
    signal: again.signal,
  });
  served.logger.info('stopped', {
    drained,
    ...left,
    frames_cut_off: cutOff,
    answers_dropped: answersDropped,
    adds_cut_off: addsCutOff,
  });
  const dead = served.deadLettered();
  const lost = [
    ...(dead > 0
      ? [
          `${count(dead, 'face')} dead-lettered after ${MAX_DELIVERIES} failed deliveries (logged), their frames without an answer for them`,
        ]
      : []),
    ...(answersDropped > 0
      ? [
          `${count(answersDropped, 'answer')} dropped uncollected while serving (past 10 minutes, or for room; logged)`,
        ]
      : []),
  ].join('; ');
  if (drained) {
    info(
      lost
        ? `facerec serve: stopped: every answer held was collected; ${lost}`
        : 'facerec serve: stopped: every frame answered and every answer collected',
    );
    return;
  }
  const parts: string[] = lost ? [lost] : [];
  const kept = { detecting: 0, recognising: left.recognising, uncollected: left.uncollected, adding: 0 };
  if (pending(kept)) {
    parts.push(
      `${describeBacklog(kept)}: ${queue === 'memory' ? 'lost (--queue memory)' : `kept in ${queue}; serve again on it to deliver them`}`,
    );
  }
  if (cutOff) {
    parts.push(
      `${count(cutOff, 'frame')} detected after the stop closed ${cutOff === 1 ? 'its' : 'their'} connection: no answer ` +
        `reached ${cutOff === 1 ? 'its client' : 'their clients'}, which should send ${cutOff === 1 ? 'it' : 'them'} again` +
        ` (the faces queued are counted above)`,
    );
  }
  if (addsCutOff) {
    parts.push(
      `${count(addsCutOff, 'face')} being added over the collections API when the stop closed ${addsCutOff === 1 ? 'its' : 'their'} ` +
        `connection (the store had not answered within --drain-seconds): stored or not, list the collection to see`,
    );
  }
  if (left.detecting) {
    // Detections the drain gave up waiting for (10 s after the connections closed, or a second Ctrl-C): one
    // may still finish and queue its faces. Which of them did is not known here; both outcomes are said.
    parts.push(
      `${count(left.detecting, 'frame')} still being detected when the server stopped: each either got 503, or a ` +
        'closed connection (its client should send it again; its faces may have been queued all the same, so some ' +
        'answers may then come twice), or finished and was answered 200 with its faces queued; faces queued are ' +
        `${queue === 'memory' ? 'lost (--queue memory)' : `kept in ${queue}`}`,
    );
  }
  info(`facerec serve: stopped with ${parts.join('; ')}`);
}

/** `facerec serve`'s queue file when `--queue` is not given: one per port, in the cache folder. */
export function defaultQueueFile(port: number): string {
  return path.join(defaultCacheDir(), 'serve', `queue-${port}.sqlite`);
}

/** `facerec serve`, `facerec client`. */
export function registerPipelineCommands(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description(
      'run the pipeline locally: Function-URL-compatible HTTP endpoint, in-process SQS-like queues, recognition consumer; GET /health, GET /metrics (Prometheus)',
    )
    .requiredOption(
      '--gallery <store>',
      'gallery: a file (from facerec enroll), s3://bucket/key or postgres://…?collection=name; changes made while serving are picked up',
    )
    .option('--reload-seconds <s>', 'how often a file or S3 gallery is re-checked for changes', '1')
    .option(
      '--collection <name>',
      'with --token: serve the gallery as /collections/<name>/faces (default: a Postgres gallery\'s own collection name, else "default")',
    )
    .option('--port <n>', 'port to listen on', '3000')
    .option(
      '--host <address>',
      'address to listen on (0.0.0.0: every interface); any address other than loopback needs a token',
      '127.0.0.1',
    )
    .option(
      '--token <token>',
      'bearer token every request must carry, which also turns on the collections API (default: $FACEREC_LOCAL_TOKEN, which keeps it out of the process list)',
    )
    .addOption(providerOption(context))
    .addOption(weightsOption('gallery'))
    .addOption(precisionOption())
    .option('--threshold <t>', "override the gallery's threshold")
    .option('--consumers <n>', 'concurrent recognition consumers (default: one per worker)')
    .option(
      '--workers <n>',
      'inference worker threads: detection and recognition of different frames run at once, the cores shared among them; "auto": one per core, at most 4; 0: on the main thread',
      'auto',
    )
    .option('--max-in-flight <n>', 'frames read or detected at once; more get 503 + Retry-After', '16')
    .option(
      '--max-in-flight-pixels <n>',
      'pixels (from each image header) of the frames decoded and detected at once; a frame beyond it waits for those before it',
      String(DEFAULT_MAX_IN_FLIGHT_PIXELS),
    )
    .option(
      '--max-queue <n>',
      'faces waiting for recognition beyond which frames get 503 + Retry-After',
      '256',
    )
    .option(
      '--max-faces <n>',
      'faces per frame sent on for recognition, largest first, as FACEREC_MAX_FACES on Lambda (1–1000); the 200 answer gives faces_found, and the smallest beyond are left out with a warning',
      '32',
    )
    .addOption(minFaceSizeOption())
    .addOption(
      new Option(
        '--max-image-bytes <n>',
        `largest image in a frame, in bytes (default ${DEFAULT_DECODE_LIMITS.maxBytes}, but without this flag request bodies stop at 6 MiB, as on a Function URL: about 4.5 MiB of image; at most ${SERVE_MAX_IMAGE_BYTES}); request bodies then may hold such an image in base64. Each frame in flight holds its body a few times over until it is decoded: with large frames, lower --max-in-flight`,
      ),
    )
    .addOption(maxImagePixelsOption())
    .option(
      '--request-timeout <s>',
      'seconds a client has to send a whole request (its headers within 10 s), then 408; raise it for large frames over slow links (a 64 MiB body in 30 s needs 18 Mbit/s). A body arriving slower than 16 KiB/s gets 408 after 5 s whatever this is (1–600)',
      '30',
    )
    .option(
      '--queue <file>',
      'queue file (SQLite): accepted frames survive a crash and are answered after a restart on the same file; "memory" for none (default: serve/queue-<port>.sqlite in the cache folder; with --port 0, memory)',
    )
    .option(
      '--drain-seconds <s>',
      'on Ctrl-C or SIGTERM, refuse new frames (503) and wait up to this long for the frames taken to be answered and collected; a second Ctrl-C or SIGTERM ends the wait; 0: do not wait',
      '10',
    )
    .option('--quiet', 'no per-request logs: warnings and errors only')
    .action(
      async (
        opts: ImageLimitFlags & {
          gallery: string;
          reloadSeconds: string;
          collection?: string;
          port: string;
          host: string;
          token?: string;
          provider: string;
          weights?: string;
          precision?: 'fp32' | 'int8';
          threshold?: string;
          consumers?: string;
          workers: string;
          maxInFlight: string;
          maxQueue: string;
          maxFaces: string;
          minFaceSize?: string;
          maxInFlightPixels: string;
          queue?: string;
          drainSeconds: string;
          requestTimeout: string;
          quiet?: boolean;
        },
      ) => {
        // Every numeric flag is checked here, before the models load.
        const drainSeconds = numberFlag('serve', '--drain-seconds', opts.drainSeconds, {
          min: 0,
          max: 3600,
        })!;
        const requestTimeout = numberFlag('serve', '--request-timeout', opts.requestTimeout, {
          min: 1,
          max: 600,
        })!;
        const port = numberFlag('serve', '--port', opts.port, { integer: true, min: 0, max: 65535 })!;
        const reloadSeconds = numberFlag('serve', '--reload-seconds', opts.reloadSeconds, {
          min: 0,
          max: 86400,
        })!;
        // A fixed threshold of 0 would answer `unknown` for every face: the runtime takes one above 0.
        const threshold = numberFlag('serve', '--threshold', opts.threshold, { above: 0, max: 2 });
        const maxFaces = numberFlag('serve', '--max-faces', opts.maxFaces, {
          integer: true,
          min: 1,
          max: 1000,
        })!;
        // Refused with the flag's name for a detector that takes none (the runtime would name
        // FACEREC_MIN_FACE_SIZE, which serve sets from it).
        const { minFaceSize } = minFaceSizeOptions('serve', context.registry, opts.minFaceSize);
        const consumers = numberFlag('serve', '--consumers', opts.consumers, {
          integer: true,
          min: 1,
          max: 64,
        });
        const { token } = localToken(opts.token, 'serve');
        assertTokenWhereNeeded(opts.host, token);

        // --port 0 (any free port) would make every such server share queue-0.sqlite: in memory instead.
        const queue = opts.queue ?? (port === 0 ? 'memory' : defaultQueueFile(port));
        // The default's folder is ours to make; a --queue path's folder must exist (a typo would make folders).
        if (opts.queue === undefined && queue !== 'memory') await makeFolder(path.dirname(queue));
        const workers =
          workersWithOwnRegistry(context, 'serve', opts.workers) ?? workersFlag('serve', opts.workers);
        // The flags given only: without --max-image-bytes, bodies keep Lambda's 6 MiB.
        const limits = imageLimitsFlag('serve', opts, { maxBytes: SERVE_MAX_IMAGE_BYTES });
        const imageLimits = {
          ...(opts.maxImageBytes === undefined ? {} : { maxBytes: limits.maxBytes }),
          ...(opts.maxImagePixels === undefined ? {} : { maxPixels: limits.maxPixels }),
        };
        const served = await serveLocally({
          gallery: opts.gallery,
          reloadSeconds,
          collection: opts.collection,
          port,
          host: opts.host,
          ...localToken(opts.token, 'serve'),
          provider: opts.provider,
          ...(opts.weights ? { weights: opts.weights } : {}),
          ...(opts.precision ? { precision: opts.precision } : {}),
          registry: context.registry,
          ...(threshold === undefined ? {} : { threshold }),
          consumers: consumers ?? Math.max(1, workers),
          workers,
          maxInFlight: positiveInteger('serve', '--max-in-flight', opts.maxInFlight)!,
          maxQueueDepth: positiveInteger('serve', '--max-queue', opts.maxQueue)!,
          maxFaces,
          ...(minFaceSize === undefined ? {} : { minFaceSize }),
          maxInFlightPixels: positiveInteger('serve', '--max-in-flight-pixels', opts.maxInFlightPixels)!,
          requestTimeoutMs: requestTimeout * 1000,
          imageLimits,
          queue,
          ...(opts.quiet ? { quiet: true } : {}),
        });
        // On loopback any length is taken (a network needs 16): but any local user can guess a short one, and it
        // opens the collections API, which changes the gallery.
        if (token !== undefined && token.length < MIN_NETWORK_TOKEN_LENGTH) {
          info(
            `warning: serve: a token of ${token.length} character${token.length === 1 ? '' : 's'} can be guessed by any user of this machine, and it opens the collections API (adds and removals); use one of at least ${MIN_NETWORK_TOKEN_LENGTH} (openssl rand -hex 16)`,
          );
        }
        info(
          `facerec serve: POST frames to ${served.runtime.url}/ — collect answers with GET ${served.runtime.url}/responses; GET /health and /metrics (Prometheus) (Ctrl-C or SIGTERM stops); queue: ${queue}; inference: ${opts.provider}, ${workers ? count(workers, 'worker thread') : 'main thread'}${opts.precision === 'int8' ? ', int8 embedder' : ''}` +
            (opts.maxImageBytes !== undefined || opts.maxImagePixels !== undefined
              ? opts.maxImageBytes === undefined
                ? `; images up to ${MAX_FRAME_FILE_BYTES} bytes (a 6 MiB body) and ${limits.maxPixels} pixels`
                : `; images up to ${limits.maxBytes} bytes (bodies up to ${bodyLimitFor(limits.maxBytes)} bytes) and ${limits.maxPixels} pixels`
              : ''),
        );
        // What is served, in one line: an operator should not have to read the gallery to know.
        const { gallery } = served;
        const everywhere = opts.host === '0.0.0.0' || opts.host === '::';
        info(
          `facerec serve: gallery ${gallery.location}: ${count((await gallery.identities()).length, 'identity', 'identities')}, ` +
            `${gallery.embedder.modelId}, ${gallery.metric}, ` +
            `${threshold === undefined ? thresholdSummary(gallery, context.registry) : `threshold ${threshold} (--threshold)`}; ` +
            `${token ? `bearer token required, collections API on /collections/${encodeURIComponent(served.collection)}/faces` : 'no token: frames only, loopback only'}` +
            `${everywhere ? `; listening on every interface (${opts.host}), port ${port}` : ''}`,
        );
        const before = served.runtime.backlog();
        if (pending(before)) {
          info(`facerec serve: ${queue} holds work from before: ${describeBacklog(before)}`);
        }
        await serveUntilStopped(served, drainSeconds, queue);
      },
    );

  program
    .command('client')
    .description('workload client: send frames, collect the answers, report latency, throughput and accuracy')
    .requiredOption('--url <url>', 'detection endpoint (facerec serve URL or Function URL)')
    .requiredOption(
      '--frames <dir>',
      'frames: <dir>/<identity>/*.{jpg,png,webp} (the folder names the expected identity; images directly in <dir> are sent with none)',
    )
    .option('--requests <n>', 'requests to send, cycling through the frames', '100')
    .option('--concurrency <n>', 'requests in flight', '10')
    .option(
      '--rate <n>',
      'send n requests per second (an open load at a fixed rate; --concurrency still caps those in flight)',
    )
    .option('--response-queue-url <url>', 'collect answers from this SQS queue instead of the local runtime')
    .option(
      '--reply-queue-url <url>',
      "ask for answers on this SQS queue (one of the deployment's reply queues, FACEREC_REPLY_QUEUES) and collect them there: several clients share a deployment, each with its own",
    )
    .option(
      '--timeout <s>',
      'seconds to wait for the last answers; a send the server does not answer in this long stops the run',
      '60',
    )
    .option(
      '--max-retries <n>',
      "resends of a frame answered 503 (busy), refused a connection or reset, after the server's Retry-After or a backoff (0–1000)",
      '8',
    )
    .option(
      '--wait <s>',
      'seconds to wait for the endpoint to accept connections first (e.g. a server just started)',
      '30',
    )
    .option(
      '--sign',
      'sign requests with SigV4 (for a Function URL with AWS_IAM auth; AWS credentials from the default chain); needs --response-queue-url or --reply-queue-url',
    )
    .option(
      '--region <region>',
      'AWS region for --sign (default: from the Function URL), and of an SQS-compatible server the queue URL names',
    )
    .option(
      '--token <token>',
      'bearer token of a facerec serve that requires one (default: $FACEREC_LOCAL_TOKEN)',
    )
    .option(
      '--max-frame-bytes <n>',
      `largest image file sent as a frame (default ${MAX_FRAME_FILE_BYTES}: its request stays under 6 MiB, a Function URL's limit and serve's default; a serve started with --max-image-bytes N takes frames up to N; at most ${SERVE_MAX_IMAGE_BYTES})`,
    )
    .option('--json', 'print the report as JSON to stdout')
    .action(
      async (opts: {
        url: string;
        frames: string;
        maxFrameBytes?: string;
        maxRetries: string;
        requests: string;
        concurrency: string;
        rate?: string;
        responseQueueUrl?: string;
        replyQueueUrl?: string;
        timeout: string;
        wait: string;
        token?: string;
        json?: boolean;
        sign?: boolean;
        region?: string;
      }) => {
        if (opts.replyQueueUrl && opts.responseQueueUrl) {
          throw new InvalidOptionsError(
            'client',
            '--reply-queue-url and --response-queue-url exclude each other: answers are collected from the reply queue',
          );
        }
        // A signed request goes to a Function URL, whose answers arrive on an SQS queue only: without one the
        // client would poll the URL's /responses (the local runtime's), unsigned, and report everything unanswered.
        if (opts.sign && !opts.replyQueueUrl && !opts.responseQueueUrl) {
          throw new InvalidOptionsError(
            'client',
            '--sign needs --response-queue-url <ResponseQueueUrl> or --reply-queue-url <your reply queue>: a ' +
              "deployed pipeline answers on an SQS queue (the stack's outputs), and a Function URL serves no answers to poll",
          );
        }
        const requests = positiveInteger('client', '--requests', opts.requests)!;
        const concurrency = positiveInteger('client', '--concurrency', opts.concurrency)!;
        const rate = numberFlag('client', '--rate', opts.rate, { above: 0 });
        const timeoutSeconds = numberFlag('client', '--timeout', opts.timeout, { above: 0, max: 86400 })!;
        const waitSeconds = numberFlag('client', '--wait', opts.wait, { min: 0, max: 3600 })!;
        const maxRetries = numberFlag('client', '--max-retries', opts.maxRetries, {
          integer: true,
          min: 0,
          max: 1000,
        })!;
        const maxFrameBytes = numberFlag('client', '--max-frame-bytes', opts.maxFrameBytes, {
          integer: true,
          min: 1024,
          max: SERVE_MAX_IMAGE_BYTES,
        });
        checkEndpointUrl(opts.url);
        // A queue URL that is none is refused now, naming its flag, not found out as frames unanswered.
        const answerQueue = opts.replyQueueUrl ?? opts.responseQueueUrl;
        const sqs = answerQueue ? await import('@facerec/transport-sqs') : undefined;
        if (answerQueue) {
          sqs!.assertSqsQueueUrl(
            answerQueue,
            opts.replyQueueUrl ? '--reply-queue-url' : '--response-queue-url',
          );
        }
        const token = localToken(opts.token, 'client');
        const frames = await loadFrames(
          opts.frames,
          maxFrameBytes === undefined ? {} : { maxFileBytes: maxFrameBytes },
        );
        if (!frames.length) {
          throw new InvalidOptionsError(
            'client',
            `no images in ${opts.frames}: give a folder <dir>/<identity>/*.{jpg,png,webp} (images directly in it are sent with no expected identity)`,
          );
        }
        // Ctrl-C (or SIGTERM) once: no more frames, and the report of what was sent; twice: out at once. While
        // the client still waits for the server (`--wait`), once: it stops waiting, says so, and sends nothing.
        const interrupted = new AbortController();
        let sending = false;
        const onSignal = () => {
          if (interrupted.signal.aborted) process.exit(130);
          interrupted.abort();
          if (sending) {
            info(
              `  stopping: no more frames; waiting up to ${Math.min(timeoutSeconds, INTERRUPT_GRACE_MS / 1000)} s for the answers of those in flight, then the report (Ctrl-C again quits at once)`,
            );
          }
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const stopListening = () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        };
        // Removed however this ends (an error setting up the collection of answers included): the first Ctrl-C
        // would otherwise no longer stop the process.
        let report: Awaited<ReturnType<typeof runWorkload>>;
        try {
          const reached = await waitForEndpoint(opts.url, waitSeconds, token.token, interrupted.signal);
          if (!reached) {
            info(`facerec client: stopped while waiting for ${opts.url} to answer; no frame was sent`);
            process.exitCode = 130;
            return;
          }
          sending = true;
          const responses =
            answerQueue && sqs
              ? queueResponses(
                  sqs.createSqsTransport(answerQueueClient(answerQueue, opts.region)),
                  answerQueue,
                )
              : localResponses(opts.url, token);
          // Collecting answers that fails is said, not reported later as frames unanswered: the first failure,
          // each new reason, and every 50th failure in a row. A queue failing from the start (no credentials, no
          // such queue, access refused) stops the run after 5 tries (about a second): no answer could ever be
          // read. Once answers came, failures are retried; so are a local server's (restarting, see
          // onUnreachable).
          let lastPollError: string | undefined;
          const onPollError = (
            _error: unknown,
            { inARow, collectedBefore, reason }: { inARow: number; collectedBefore: boolean; reason: string },
          ): 'stop' | undefined => {
            if (reason !== lastPollError || inARow % 50 === 0) {
              lastPollError = reason;
              info(
                `  collecting answers failed${inARow > 1 ? ` (${inARow} times in a row)` : ''}: ${reason}`,
              );
            }
            return answerQueue && !collectedBefore && inARow >= 5 ? 'stop' : undefined;
          };
          report = await runWorkload({
            signal: interrupted.signal,
            url: opts.url,
            frames,
            responses,
            ...(opts.replyQueueUrl ? { replyTo: opts.replyQueueUrl } : {}),
            requests,
            concurrency,
            ...(rate === undefined ? {} : { rate }),
            timeoutMs: timeoutSeconds * 1000,
            maxRetries,
            send: opts.sign ? sigV4Sender(opts.region ? { region: opts.region } : {}) : jsonSender(token),
            onProgress: (done, total) => {
              if (done % 10 === 0 || done === total) info(`  ${done}/${total} answered`);
            },
            onPollError,
            onUnreachable: (unreachable) =>
              info(
                unreachable
                  ? `  ${opts.url} refuses connections (stopped or restarting): resending for up to 30 s`
                  : `  ${opts.url} answers again`,
              ),
          });
        } finally {
          stopListening();
        }
        if (opts.json) {
          const { outcomes, ...summary } = report;
          process.stdout.write(`${JSON.stringify({ ...summary, outcomes }, null, 2)}\n`);
        } else {
          for (const line of formatWorkloadReport(report)) process.stdout.write(`${line}\n`);
        }
        if (report.stopped) process.exitCode = 130;
        else if (
          report.unanswered.length ||
          report.rejected ||
          report.failed ||
          report.collectionError ||
          report.unresponsive ||
          report.refused
        )
          process.exitCode = 1;
      },
    );
}

/**
 * Where the client's SQS requests go for the queue it collects from: AWS's SQS in the region its URL names
 * (`https://sqs.eu-west-1.amazonaws.com/…`; AWS_REGION not needed), or the server the URL names (an
 * SQS-compatible one, at its origin: the SDK would otherwise warn on every request that the URL's host is not
 * its endpoint), in `--region`, AWS_REGION or `us-east-1`, which such servers take as they come.
 */
function answerQueueClient(
  queueUrl: string,
  region: string | undefined,
): { region?: string; endpoint?: string } {
  const url = new URL(queueUrl);
  const aws = /^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$/.exec(url.hostname);
  if (aws) return { region: aws[1] ?? aws[2]! };
  return { endpoint: url.origin, region: region ?? process.env.AWS_REGION ?? 'us-east-1' };
}

/** The local runtime's bearer token: the flag, else `$FACEREC_LOCAL_TOKEN`. */
function localToken(flag: string | undefined, command: string): { token?: string } {
  // `--token "$TOKEN"` with the variable unset: refused, not taken as "no token" (which turns auth off).
  if (flag !== undefined && flag.trim() === '') {
    throw new InvalidOptionsError(
      command,
      '--token is empty (an unset shell variable?); give the token, or leave --token out',
    );
  }
  const token = flag ?? process.env.FACEREC_LOCAL_TOKEN;
  const source = flag === undefined ? '$FACEREC_LOCAL_TOKEN' : '--token';
  // HTTP drops the spaces around a header's value: a token with them could never be presented.
  if (token !== undefined && token !== '' && token !== token.trim()) {
    throw new InvalidOptionsError(
      command,
      token.trim() === ''
        ? `${source} holds only spaces; give the token, or unset it`
        : `${source} starts or ends with spaces, which no request can send; remove them`,
    );
  }
  return token ? { token } : {};
}

/** `--url` must be an http(s) URL: refused at once rather than after `--wait` seconds of failed connections. */
function checkEndpointUrl(url: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new InvalidOptionsError(
      'client',
      `--url must be an http:// or https:// URL, got "${url.slice(0, 80)}"`,
    );
  }
}

/**
 * Waits until something accepts connections at `url` (any HTTP answer will do), so `facerec serve … &`
 * followed at once by `facerec client` works; a Function URL answers at once.
 */
async function waitForEndpoint(
  url: string,
  seconds: number,
  token: string | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  const deadline = performance.now() + seconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      // /health: `facerec serve` answers it without a refusal warning in its log (GET / is a 405), given the
      // token when it has one (else a 401, logged and counted as refused).
      // One controller for Ctrl-C and the 5 s limit, held here: fetch's hold on an `AbortSignal.any` of the two
      // can be lost to garbage collection, and a server that takes the connection and never answers then held
      // the client for ever (nodejs/node#55428).
      const controller = new AbortController();
      const stop = () => controller.abort();
      const timer = setTimeout(stop, 5000);
      signal.addEventListener('abort', stop);
      try {
        await fetch(new URL('/health', url), {
          method: 'GET',
          signal: controller.signal,
          ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        });
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', stop);
      }
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      // fetch's own message is "fetch failed": the socket's code (ECONNREFUSED, ENOTFOUND, …) or its cause says why.
      const cause = (error as { cause?: { message?: unknown } }).cause?.message;
      if (cause === 'bad port') {
        // Ports the Fetch standard blocks (6000, 5060, 10080, …): no wait would help, and "fetch failed" says nothing.
        throw new InvalidOptionsError(
          'client',
          `--url's port ${new URL(url).port} is one that fetch, the client's HTTP, never connects to (a "bad port" of the Fetch standard, as browsers block it); serve on another port`,
        );
      }
      const why = unreachableCode(error) ?? (typeof cause === 'string' ? cause : (error as Error).message);
      if (performance.now() >= deadline) {
        // Not bad input (exit 1, not 2): the server is down or not started yet, or the network fails.
        throw new FacerecError(
          'ENDPOINT_UNREACHABLE',
          `client: nothing answers at ${url} (${why}) after waiting ${seconds} s`,
          { cause: error },
        );
      }
      // Said once, so that a client waiting for a server still starting is not taken for a hung one.
      if (attempt === 0) info(`  waiting up to ${seconds} s for ${url} to answer (${why})`);
      // Cut short by Ctrl-C (an abort rejects it).
      if (!(await sleep(250, true, { signal }).catch(() => false))) return false;
    }
  }
}
