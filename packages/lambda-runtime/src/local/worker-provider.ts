import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  BaseEmbedder,
  type BaseEmbedderSettings,
  type DetectedFaces,
  type DetectFacesOptions,
  DisposedError,
  deserializeError,
  type FaceDetection,
  type FaceDetector,
  type FaceProvider,
  FacerecError,
  InvalidOptionsError,
  MODELS,
  type ModelRegistry,
  type ModelStore,
  type RgbImage,
  SPECIFICATION_VERSION,
  type WarmUpFrame,
} from '@facerec/framework';
import { type PipelineLogger, silentLogger } from '../logger.js';
import { loadProvider } from '../providers.js';
import type { WorkerJob, WorkerReply, WorkerSetup } from './worker-protocol.js';

/** Options of {@link createWorkerProvider}. */
export interface WorkerProviderOptions {
  /** Provider name in the built-in registry: `onnx` or `tfjs`. */
  readonly provider: string;
  /**
   * Worker threads, 1–64. Each loads every model it is asked for, so memory grows with the count; jobs go to
   * whichever worker is free.
   */
  readonly workers: number;
  /** Inference threads per worker. Default: the available cores shared among the workers, at least 1. */
  readonly threads?: number;
  /** Must be the built-in registry (the default): a worker thread cannot receive another one. */
  readonly registry?: ModelRegistry;
  readonly logger?: PipelineLogger;
  /**
   * No informational lines from the providers in the workers. Default false: the first worker's provider says
   * its lines (the tfjs provider: which backend runs) once; the other workers, and replacements, stay silent.
   */
  readonly quiet?: boolean;
  /**
   * Called with each worker thread once it runs, the first ones and any replacement: for monitoring
   * (`worker.performance`, heap snapshots) or to stop one in a test of the replacement path.
   */
  readonly onWorkerStart?: (worker: Worker, index: number) => void;
}

/** A {@link FaceProvider} whose detectors and embedders run in worker threads. */
export interface WorkerProvider extends FaceProvider {
  readonly workers: number;
  /** Inference threads per worker. */
  readonly threads: number;
  /** Disposes every model and stops the workers; later calls reject with `DisposedError`. */
  close(): Promise<void>;
}

type Job = WorkerJob extends infer J ? (J extends unknown ? Omit<J, 'id'> : never) : never;

interface Pending {
  readonly job: Job;
  /** Only this worker may take the job (models are loaded and warmed up in every worker). */
  readonly slot: Slot | undefined;
  /** Never joined with other jobs (see {@link coalesce}). */
  readonly alone?: boolean;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  current: (Pending & { id: number }) | undefined;
  /** Its worker died and no replacement could start: jobs for every worker skip it. */
  lost?: boolean;
  /** When its workers stopped lately (for the crash-loop limit). */
  stops: number[];
}

/**
 * A slot whose workers stop this many times within {@link CRASH_WINDOW_MS} is given up (a model or input
 * that kills every worker would otherwise restart them forever, each restart reloading the models).
 */
const MAX_STOPS = 5;
const CRASH_WINDOW_MS = 60_000;

/**
 * Frames detected together at most, when detections queue up for a worker: up to 8, and up to 1280×720
 * pixels in all (larger frames go alone: P-Net runs a batch of same-size frames as one input, which beyond
 * the warm-up frame's size would leave onnxruntime's arena).
 */
const COALESCE = { images: 8, pixels: 1280 * 720 } as const;

const pixels = (images: readonly RgbImage[]) => images.reduce((sum, i) => sum + i.width * i.height, 0);

/**
 * Batching across requests where it pays: detections waiting in the queue with the same model, options and
 * crop as `first` join it in one `detectFaces` call (MTCNN runs same-size frames through P-Net together, and
 * every candidate through R-Net and O-Net together; each frame's result is exactly its own, see the
 * cascade), up to {@link COALESCE}. Only jobs that any worker may take are joined; when a joined call fails,
 * each frame is detected again alone, so that one bad frame fails only its own request.
 */
function coalesce(queue: Pending[], first: Pending): Pending {
  if (first.job.kind !== 'detect' || first.slot || first.alone) return first;
  const key = (job: Job & { kind: 'detect' }) => JSON.stringify([job.model, job.options, job.detectOptions]);
  const want = key(first.job);
  const group: (Pending & { job: { kind: 'detect' } })[] = [first as Pending & { job: { kind: 'detect' } }];
  let count = first.job.images.length;
  let total = pixels(first.job.images);
  for (let i = 0; i < queue.length && count < COALESCE.images; ) {
    const other = queue[i]!;
    if (other.job.kind === 'detect' && !other.slot && !other.alone && key(other.job) === want) {
      const more = pixels(other.job.images);
      if (count + other.job.images.length <= COALESCE.images && total + more <= COALESCE.pixels) {
        group.push(other as Pending & { job: { kind: 'detect' } });
        count += other.job.images.length;
        total += more;
        queue.splice(i, 1);
        continue;
      }
    }
    i++;
  }
  if (group.length === 1 || total > COALESCE.pixels) return first;
  return {
    job: { ...first.job, images: group.flatMap((p) => p.job.images) },
    slot: undefined,
    resolve(value) {
      const results = value as unknown[];
      let at = 0;
      for (const p of group) {
        p.resolve(results.slice(at, at + p.job.images.length));
        at += p.job.images.length;
      }
    },
    // One bad frame must not fail the others: each is run again on its own, first in line.
    reject() {
      queue.unshift(...group.map((p) => ({ ...p, alone: true })));
    },
  };
}

/**
 * Starts the worker entry beside this module: compiled JavaScript, or (when this module runs from source,
 * in this repository's tests) the TypeScript entry through tsx's loader, registered in the new thread.
 */
function startWorker(workerData: WorkerSetup): Worker {
  const url = new URL(
    `./inference-worker${path.extname(new URL(import.meta.url).pathname)}`,
    import.meta.url,
  );
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * Runs a provider's models in `workers` worker threads, each with its share of the cores, behind the
 * ordinary {@link FaceProvider} contract: detection and recognition of different requests then run at the
 * same time instead of one after the other on the main thread (onnxruntime-node runs a session synchronously
 * on the thread that calls it, so in one thread nothing else runs meanwhile, not even the HTTP server).
 * Each job runs whole in one worker, on the first free one. A worker that dies fails its current job and is
 * replaced; the replacement loads and warms up the models its predecessor had before it takes other jobs.
 * Used by `facerec serve --workers`.
 *
 * @example
 * const provider = await createWorkerProvider({ provider: 'onnx', workers: 2 });
 * const detector = provider.detector('mtcnn');
 * const [found] = await detector.detectFaces([image]);
 * await provider.close();
 */
export async function createWorkerProvider(options: WorkerProviderOptions): Promise<WorkerProvider> {
  const { workers } = options;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new InvalidOptionsError('workers', `must be an integer from 1 to 64, got ${workers}`);
  }
  if (options.registry && options.registry !== MODELS) {
    throw new InvalidOptionsError('workers', 'worker threads run the built-in model registry only');
  }
  const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / workers));
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new InvalidOptionsError('workers', `threads must be an integer from 1 to 256, got ${threads}`);
  }
  // Fails here, with its message, when the provider's package is missing (before any thread starts).
  const local = await loadProvider(options.provider, { registry: MODELS });
  const logger = options.logger ?? silentLogger;
  const setup: WorkerSetup = { provider: options.provider, threads, announce: false };
  let announced = options.quiet === true;
  const slots: Slot[] = Array.from({ length: workers }, (_, index) => ({
    index,
    worker: undefined,
    current: undefined,
    stops: [],
  }));
  const queue: Pending[] = [];
  /**
   * The jobs that prepared every worker (models loaded, warmed up), by job: a replacement worker runs them
   * before it takes other work, so that the first request after a crash does not pay for them.
   */
  const preparations = new Map<string, Job>();
  let nextId = 0;
  let closed = false;

  const dispatch = () => {
    for (const slot of slots) {
      if (!slot.worker || slot.current) continue;
      const at = queue.findIndex((p) => p.slot === undefined || p.slot === slot);
      if (at < 0) continue;
      const pending = coalesce(queue, queue.splice(at, 1)[0]!);
      slot.current = { ...pending, id: nextId++ };
      // A worker with a job keeps the process alive until it answers; an idle one does not (see `start`).
      slot.worker.ref();
      try {
        slot.worker.postMessage({ ...pending.job, id: slot.current.id });
      } catch (error) {
        // A value that cannot cross threads (a function in an option, say).
        slot.current = undefined;
        pending.reject(
          new InvalidOptionsError('workers', `cannot send the job to a worker: ${String(error)}`),
        );
        // A joined detection puts its frames back in the queue (see coalesce): look at it again.
        queueMicrotask(dispatch);
      }
    }
  };

  /** Starts the worker of `slot`; resolves once it runs (its provider loaded). */
  const start = (slot: Slot): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = startWorker({ ...setup, announce: !announced });
      announced = true;
      let started = false;
      worker.on('message', (reply: WorkerReply) => {
        if (reply.id === -1) {
          started = true;
          slot.worker = worker;
          // Idle, it does not hold the process open: a script that forgot close() still ends when its work is
          // done, as with onnxruntime on the main thread.
          worker.unref();
          options.onWorkerStart?.(worker, slot.index);
          // A replacement first loads and warms up what its predecessor had (nothing for the first workers).
          queue.unshift(
            ...[...preparations.values()].map((job) => ({
              job,
              slot,
              resolve: () => undefined,
              reject: (error: unknown) =>
                logger.error('a restarted inference worker could not prepare a model', {
                  worker: slot.index,
                  error: String(error),
                }),
            })),
          );
          resolve();
          dispatch();
          return;
        }
        const current = slot.current;
        if (!current || current.id !== reply.id) return;
        slot.current = undefined;
        if (reply.error) current.reject(deserializeError(reply.error));
        else current.resolve(reply.result);
        dispatch();
        if (!slot.current) worker.unref();
      });
      worker.on('error', (error) => {
        if (!started) reject(error);
        else logger.error('inference worker failed', { worker: slot.index, error: error.message });
      });
      worker.on('exit', (code) => {
        if (slot.worker === worker) slot.worker = undefined;
        if (!started) {
          reject(new Error(`inference worker exited with code ${code} while starting`));
          return;
        }
        if (closed) return;
        // Its current job fails (it may have been the cause); a new worker takes the next ones.
        slot.current?.reject(
          new FacerecError('WORKER_FAILED', `inference worker stopped (exit code ${code})`),
        );
        slot.current = undefined;
        const now = performance.now();
        slot.stops = [...slot.stops.filter((t) => now - t < CRASH_WINDOW_MS), now];
        const replace =
          slot.stops.length < MAX_STOPS
            ? start(slot)
            : Promise.reject(new Error(`${MAX_STOPS} stops within ${CRASH_WINDOW_MS / 1000} s`));
        if (slot.stops.length < MAX_STOPS)
          logger.error('inference worker stopped; starting another', { worker: slot.index, code });
        replace.catch((error: unknown) => {
          logger.error('could not restart an inference worker', { worker: slot.index, error: String(error) });
          slot.lost = true;
          // Jobs only this worker could take fail, and every job does once no worker is left.
          const none = slots.every((s) => !s.worker);
          for (let i = queue.length - 1; i >= 0; i--) {
            const p = queue[i]!;
            if (!none && p.slot !== slot) continue;
            queue.splice(i, 1);
            p.reject(
              new FacerecError('WORKER_FAILED', none ? 'no inference worker left' : 'inference worker lost'),
            );
          }
        });
      });
    });

  const request = (job: Job, slot?: Slot): Promise<unknown> => {
    if (closed) return Promise.reject(new DisposedError('worker provider'));
    if (slot?.lost || slots.every((s) => s.lost))
      return Promise.reject(new FacerecError('WORKER_FAILED', 'no inference worker left'));
    return new Promise((resolve, reject) => {
      queue.push({ job, slot, resolve, reject });
      dispatch();
    });
  };
  /** The job on every worker (loading and warming up models), resolving with the first worker's result. */
  const everywhere = async (job: Job): Promise<unknown> => {
    const key = JSON.stringify(job);
    if (job.kind !== 'dispose') preparations.set(key, job);
    try {
      const live = slots.filter((slot) => !slot.lost);
      if (live.length === 0) throw new FacerecError('WORKER_FAILED', 'no inference worker left');
      if (job.kind !== 'detector-ready' && job.kind !== 'embedder-load')
        return (await Promise.all(live.map((slot) => request(job, slot))))[0];
      // A load may build a graph into the model cache (on first use: seconds, and for an int8 graph more); one
      // worker that is running builds it alone and the others then read it from the cache, instead of every
      // worker building the same file at once on the same cores.
      const first = live.find((slot) => slot.worker !== undefined) ?? live[0]!;
      let result: unknown;
      try {
        result = await request(job, first);
      } catch (error) {
        // The worker stopped during the load (killed, out of memory), not the load failing: once more, on
        // another worker if one is running (the stopped one is being replaced, and reloads it too).
        if (!FacerecError.isInstance(error) || error.code !== 'WORKER_FAILED') throw error;
        const next = slots.find((s) => s !== first && !s.lost && s.worker !== undefined) ?? first;
        logger.warn('an inference worker stopped while loading a model; loading it again', {
          worker: first.index,
          retryOn: next.index,
        });
        result = await request(job, next);
      }
      // The workers still there once it is built (one may have been lost meanwhile).
      await Promise.all(slots.filter((s) => s !== first && !s.lost).map((slot) => request(job, slot)));
      return result;
    } catch (error) {
      preparations.delete(key); // bad options, a model that cannot load: nothing to replay
      throw error;
    }
  };

  try {
    await Promise.all(slots.map(start));
  } catch (error) {
    closed = true;
    await Promise.all(slots.map((s) => s.worker?.terminate()));
    throw error;
  }

  const provider: WorkerProvider = {
    specificationVersion: SPECIFICATION_VERSION,
    name: local.name,
    registry: MODELS,
    workers,
    threads,
    modelStore: (): Promise<ModelStore> => local.modelStore(),
    detector(modelId, detectorOptions) {
      return new WorkerDetector(
        local.name,
        modelId,
        { ...(detectorOptions ?? {}) } as Record<string, unknown>,
        request,
        everywhere,
      );
    },
    async embedder(modelId, embedderOptions) {
      const ref = { model: modelId, options: { ...(embedderOptions ?? {}) } as Record<string, unknown> };
      const description = (await everywhere({ kind: 'embedder-load', ...ref })) as BaseEmbedderSettings;
      return new WorkerEmbedder(description, ref, request);
    },
    async close() {
      if (closed) return;
      await everywhere({ kind: 'dispose' }).catch(() => undefined);
      closed = true;
      for (const p of queue.splice(0)) p.reject(new DisposedError('worker provider'));
      await Promise.all(slots.map((s) => s.worker?.terminate()));
    },
  };
  return provider;
}

type Request = (job: Job, slot?: Slot) => Promise<unknown>;

class WorkerDetector implements FaceDetector {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly provider: string;
  readonly modelId: string;
  readonly #ref: { model: string; options: Record<string, unknown> };
  readonly #request: Request;
  readonly #everywhere: (job: Job) => Promise<unknown>;
  #disposed = false;

  constructor(
    provider: string,
    modelId: string,
    options: Record<string, unknown>,
    request: Request,
    everywhere: (job: Job) => Promise<unknown>,
  ) {
    this.provider = provider;
    this.modelId = modelId;
    this.#ref = { model: modelId, options };
    this.#request = request;
    this.#everywhere = everywhere;
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError(`${this.provider} ${this.modelId} detector`);
  }

  async ready(): Promise<void> {
    this.#check();
    await this.#everywhere({ kind: 'detector-ready', ...this.#ref });
  }

  async warmUp(frame?: WarmUpFrame): Promise<void> {
    this.#check();
    await this.#everywhere({ kind: 'warm-up', ...this.#ref, frame });
  }

  async detect(image: RgbImage): Promise<FaceDetection[]> {
    return (await this.detectFaces([image]))[0]!.faces;
  }

  async detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]> {
    return (await this.detectFaces(images)).map((d) => d.faces);
  }

  async detectFaces(images: readonly RgbImage[], options?: DetectFacesOptions): Promise<DetectedFaces[]> {
    this.#check();
    return (await this.#request({
      kind: 'detect',
      ...this.#ref,
      images,
      detectOptions: options,
    })) as DetectedFaces[];
  }

  /** This handle only: the workers' model is released by the provider's `close`. */
  async dispose(): Promise<void> {
    this.#disposed = true;
  }
}

/** An embedder in the workers: validated and batched here like any provider's, each batch run by a worker. */
class WorkerEmbedder extends BaseEmbedder {
  readonly #ref: { model: string; options: Record<string, unknown> };
  readonly #request: Request;

  constructor(
    settings: BaseEmbedderSettings,
    ref: { model: string; options: Record<string, unknown> },
    request: Request,
  ) {
    super(settings);
    this.#ref = ref;
    this.#request = request;
  }

  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    const rows = (await this.#request({ kind: 'embed', ...this.#ref, faces })) as Float32Array[];
    const out = new Float32Array(rows.length * this.dimension);
    rows.forEach((row, i) => {
      out.set(row, i * this.dimension);
    });
    return out;
  }

  /** This handle only: the workers' model is released by the provider's `close`. */
  protected release(): void {}
}
