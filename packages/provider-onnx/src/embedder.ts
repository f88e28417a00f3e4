import {
  BaseEmbedder,
  EmbedderOutputError,
  type EmbedderPreprocessing,
  FACENET_PREPROCESSING,
  INCEPTION_RESNET_V1,
  INCEPTION_RESNET_V1_WEIGHTS,
  type InceptionResnetV1Weights,
  inceptionResnetV1CheckpointPath,
  type ModelStore,
  type RgbImage,
} from '@facerec/framework';
import { INCEPTION_RESNET_V1_EMBEDDING_SIZE, sha256OfFile } from '@facerec/framework/internal';
import type { InferenceSession } from 'onnxruntime-node';
import { buildInceptionResnetV1 } from './graph/index.js';
import { createSession, loadOrt } from './graph/session.js';
import {
  anyRecordedCalibration,
  CALIBRATION_DIR_ENV,
  cachedInt8Graph,
  type EmbedderPrecision,
  readCalibrationFaces,
  recordedInt8Calibration,
} from './int8.js';
import { type CachedGraph, cachedGraph, resolveWeights } from './model-cache.js';

type Ort = typeof import('onnxruntime-node');

/** The name InceptionResnetV1's graphs have in the model cache (`<tag>-<weights sha256>-v….onnx`). */
const GRAPH_TAG = 'inception-resnet-v1';

/** Writes crops into one NCHW float32 batch, applying `(x − mean) / std`. */
export function toNchwBatch(faces: readonly RgbImage[], p: EmbedderPreprocessing): Float32Array {
  const { width, height } = p.inputSize;
  const plane = width * height;
  const out = new Float32Array(faces.length * 3 * plane);
  faces.forEach((face, f) => {
    const base = f * 3 * plane;
    const d = face.data;
    for (let c = 0; c < 3; c++) {
      const mean = p.mean[c]!;
      const inv = 1 / p.std[c]!;
      const o = base + c * plane;
      for (let i = 0; i < plane; i++) out[o + i] = (d[3 * i + c]! - mean) * inv;
    }
  });
  return out;
}

/** What a loaded InceptionResnetV1 graph came from; the ONNX bytes themselves are not kept. */
export type InceptionResnetV1GraphInfo = Omit<CachedGraph, 'bytes'> & {
  /** `inception-resnet-v1/<weights name or checkpoint file name>`. */
  readonly modelId: string;
  /** `fp32`, or `int8` when the session runs the quantized graph. */
  readonly precision: EmbedderPrecision;
  /**
   * int8: the calibration faces' folder and number of images, and `recorded` (when the calibration was recorded
   * in the model cache) when no folder was named and the one recorded there was used.
   */
  readonly calibration?: { readonly folder: string; readonly images: number; readonly recorded?: string };
};

/** Options of {@link OnnxInceptionResnetV1Embedder.load}. */
export interface OnnxInceptionResnetV1LoadOptions {
  /** Threads per operator (onnxruntime `intraOpNumThreads`). */
  readonly intraOpNumThreads: number;
  /** Faces per inference call; larger batches are split. */
  readonly maxBatchSize?: number | undefined;
  /** `fp32` (default) or `int8`: the QDQ graph calibrated on {@link calibrationDir}'s faces. */
  readonly precision?: EmbedderPrecision | undefined;
  /** Face images to calibrate the int8 graph on; default `$FACEREC_CALIBRATION_DIR`. */
  readonly calibrationDir?: string | undefined;
}

/** Timings of one {@link OnnxInceptionResnetV1Embedder.load}, in milliseconds. */
export interface InceptionResnetV1LoadReport {
  /** Getting the ONNX graph: pull and hash the weights, then read the cached `.onnx` or build it. */
  readonly graphMs: number;
  /** Creating the onnxruntime session (graph optimisation, weight pre-packing). */
  readonly sessionMs: number;
  readonly totalMs: number;
}

const COMPONENT = 'onnx inception-resnet-v1';

/**
 * A user-supplied checkpoint path, checked and hashed. The hash keys the `.onnx` cache, so editing the
 * file in place never reuses a graph built from the old weights.
 */
async function checkpointFile(weights: string): Promise<{ path: string; sha256: string }> {
  const file = await inceptionResnetV1CheckpointPath(COMPONENT, weights);
  return { path: file, sha256: await sha256OfFile(file) };
}

/**
 * The ONNX graph for InceptionResnetV1 with the requested weights: for `vggface2`/`casia-webface`, the
 * upstream checkpoint is pulled through the model store (offline mirror, cache, then download; hash-checked,
 * trust on first use where the manifest has no hash); for a path, that `.pt` file. The graph is built from
 * the checkpoint on first use and cached under `<cacheDir>/onnx/`, keyed by the weights' sha256; later
 * loads read the cached `.onnx` (`built: false`). facenet-pytorch's `logits.*` classifier head is dropped.
 *
 * @throws InvalidOptionsError when `weights` is neither a known name nor an existing file.
 * @throws CheckpointError when the checkpoint is unreadable or is not an InceptionResnetV1 state dict.
 * @throws ModelUnavailableError / IntegrityError when a named checkpoint cannot be obtained or verified.
 *
 * @example
 * // Convert and cache ahead of time, e.g. after `facerec models pull inception-resnet-v1-vggface2`.
 * const graph = await loadInceptionResnetV1Graph(store, 'vggface2');
 * console.log(graph.built ? `built in ${graph.buildMs} ms` : 'cached', graph.path);
 */
export async function loadInceptionResnetV1Graph(
  store: ModelStore,
  weights: InceptionResnetV1Weights,
): Promise<CachedGraph & { modelId: string }> {
  const named = Object.hasOwn(INCEPTION_RESNET_V1_WEIGHTS, weights)
    ? INCEPTION_RESNET_V1_WEIGHTS[weights as keyof typeof INCEPTION_RESNET_V1_WEIGHTS]
    : undefined;
  const source = named ? await resolveWeights(store, named) : await checkpointFile(weights);
  const modelId = INCEPTION_RESNET_V1.modelId({ weights });
  const graph = await cachedGraph(store.cacheDir, GRAPH_TAG, source, (sd, metadata) =>
    buildInceptionResnetV1(sd, { metadata, source: source.path }),
  );
  return { ...graph, modelId };
}

/**
 * InceptionResnetV1 (facenet-pytorch) on onnxruntime-node: 160×160 crops in, 512-d L2-normalised embeddings
 * out, in batches of at most `maxBatchSize`. Create it through `createOnnxProvider().embedder(...)`.
 */
export class OnnxInceptionResnetV1Embedder extends BaseEmbedder {
  /** Where the graph came from: its cached `.onnx` path, and whether this load built it. */
  readonly graph: InceptionResnetV1GraphInfo;
  readonly loadReport: InceptionResnetV1LoadReport;
  #session: InferenceSession;
  readonly #ort: Ort;

  private constructor(
    ort: Ort,
    session: InferenceSession,
    graph: InceptionResnetV1GraphInfo,
    loadReport: InceptionResnetV1LoadReport,
    maxBatchSize: number | undefined,
  ) {
    super({
      provider: 'onnx',
      modelId: graph.modelId,
      weightsSha256: graph.weightsSha256,
      dimension: INCEPTION_RESNET_V1_EMBEDDING_SIZE,
      preprocessing: FACENET_PREPROCESSING,
      precision: graph.precision,
      maxBatchSize,
    });
    this.#ort = ort;
    this.#session = session;
    this.graph = graph;
    this.loadReport = loadReport;
  }

  /**
   * Loads (and on first use builds and caches) the model. Options are validated by the provider; this
   * trusts them.
   */
  static async load(
    store: ModelStore,
    weights: InceptionResnetV1Weights,
    options: OnnxInceptionResnetV1LoadOptions,
  ): Promise<OnnxInceptionResnetV1Embedder> {
    const started = performance.now();
    const precision = options.precision ?? 'fp32';
    const size = FACENET_PREPROCESSING.inputSize.width;
    // No int8 ranges ship for InceptionResnetV1: the calibration faces are checked before the weights are
    // pulled (107 MB) and converted, so a missing folder is reported first, unless the cache has a calibration
    // recorded (for these weights or others: which, only the weights' hash tells).
    const named = options.calibrationDir ?? process.env[CALIBRATION_DIR_ENV];
    const faces =
      precision === 'int8' && (named || !(await anyRecordedCalibration(store.cacheDir, GRAPH_TAG)))
        ? await readCalibrationFaces(
            COMPONENT,
            options.calibrationDir,
            size,
            named
              ? ''
              : '; none is recorded in the model cache yet (the folder of the first int8 load is recorded, and later loads use it)',
          )
        : undefined;
    const { modelId, ...fp32 } = await loadInceptionResnetV1Graph(store, weights);
    const calibration =
      precision === 'int8' ? (faces ?? (await recordedInt8Calibration(COMPONENT, fp32))) : undefined;
    const { bytes, ...cached } =
      calibration !== undefined
        ? await cachedInt8Graph(
            fp32,
            calibration,
            (faces) => ({
              data: toNchwBatch(faces, FACENET_PREPROCESSING),
              dims: [faces.length, 3, size, size],
            }),
            options.intraOpNumThreads,
            { record: true },
          )
        : fp32;
    const graph: InceptionResnetV1GraphInfo = {
      ...cached,
      modelId,
      precision,
      ...(calibration === undefined
        ? {}
        : {
            calibration:
              'recorded' in calibration
                ? {
                    folder: calibration.recorded.folder,
                    images: calibration.recorded.images,
                    recorded: calibration.recorded.at,
                  }
                : { folder: calibration.folder, images: calibration.images },
          }),
    };
    const graphMs = performance.now() - started;
    // onnxruntime copies the initializers into its own memory; the ~90 MB of ONNX bytes are not kept, so
    // they can be collected once the session exists.
    const session = await createSession(bytes ?? graph.path, {
      intraOpNumThreads: options.intraOpNumThreads,
    });
    const ort = await loadOrt();
    const totalMs = performance.now() - started;
    return new OnnxInceptionResnetV1Embedder(
      ort,
      session,
      graph,
      { graphMs, sessionMs: totalMs - graphMs, totalMs },
      options.maxBatchSize,
    );
  }

  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    const { width, height } = this.preprocessing.inputSize;
    const input = new this.#ort.Tensor('float32', toNchwBatch(faces, this.preprocessing), [
      faces.length,
      3,
      height,
      width,
    ]);
    const { embedding } = await this.#session.run({ input });
    if (!embedding) throw new EmbedderOutputError(this.modelId, 'the graph has no embedding output');
    return embedding.data as Float32Array;
  }

  protected async release(): Promise<void> {
    await this.#session.release();
  }
}
