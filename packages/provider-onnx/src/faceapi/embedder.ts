import path from 'node:path';
import { FACEAPI_RESNET, type ModelStore, type RgbImage } from '@facerec/framework';
import {
  FACEAPI_RESNET_INPUT_SIZE,
  FaceApiEmbedder,
  type FloatRgbImage,
  pullFaceApiResnetFiles,
  readTfjsWeightsFile,
  toFaceApiBatch,
} from '@facerec/framework/internal';
import type { InferenceSession } from 'onnxruntime-node';
import type { CalibrationBatch } from '../graph/calibrate.js';
import { createSession, loadOrt } from '../graph/session.js';
import { cachedInt8Graph, type EmbedderPrecision, int8Calibration } from '../int8.js';
import { type CachedGraph, cachedOnnxFile, GRAPH_BUILDER_VERSION, graphSource } from '../model-cache.js';
import { buildFaceApiResnet, FACEAPI_RESNET_GRAPH_VERSION } from './graph.js';
import { FACEAPI_RESNET_INT8_RANGES } from './int8-ranges.js';

/** Options of {@link OnnxFaceApiEmbedder.load}. */
export interface OnnxFaceApiEmbedderOptions {
  /** Threads per operator (onnxruntime `intraOpNumThreads`). */
  readonly intraOpNumThreads: number;
  /** Faces per inference call; larger batches are split. */
  readonly maxBatchSize?: number | undefined;
  /**
   * `fp32` (default) or `int8`: the QDQ graph, calibrated on {@link calibrationDir}'s faces, or with none named
   * on the activation ranges shipped for face-api.js's published weights ({@link FACEAPI_RESNET_INT8_RANGES}).
   */
  readonly precision?: EmbedderPrecision | undefined;
  /** Face images to calibrate the int8 graph on; default `$FACEREC_CALIBRATION_DIR`, else the shipped ranges. */
  readonly calibrationDir?: string | undefined;
}

/** The layout of the graph {@link loadFaceApiResnetGraph} builds (its tensor names): `v<builder>.<graph>`. */
export const FACEAPI_RESNET_GRAPH_LAYOUT = `v${GRAPH_BUILDER_VERSION}.${FACEAPI_RESNET_GRAPH_VERSION}`;

/** One calibration batch of 150×150 faces, as the graph's input takes them. */
export const faceApiCalibrationBatch = (faces: readonly RgbImage[]): CalibrationBatch => ({
  data: toFaceApiBatch(faces, 'NCHW'),
  dims: [faces.length, 3, FACEAPI_RESNET_INPUT_SIZE, FACEAPI_RESNET_INPUT_SIZE],
});

/**
 * The face-api.js recognition graph, from `<cacheDir>/onnx/` when present. The tfjs files are not PyTorch
 * checkpoints, so this uses `cachedOnnxFile` (the same folder and atomic write as `cachedGraph`) with
 * its own reader. The file name carries the shard's sha256 (the cache key), the manifest's (it decides how the shard
 * is decoded) and both builder versions, so no stale graph is ever reused.
 */
export async function loadFaceApiResnetGraph(store: ModelStore): Promise<CachedGraph> {
  const { weights: bin, manifest } = await pullFaceApiResnetFiles(store);
  const dir = path.join(store.cacheDir, 'onnx');
  const file = path.join(
    dir,
    `${FACEAPI_RESNET.id}-${bin.sha256.slice(0, 16)}-${manifest.sha256.slice(0, 8)}-${FACEAPI_RESNET_GRAPH_LAYOUT}.onnx`,
  );
  return cachedOnnxFile(file, bin.sha256, async () =>
    // The store keeps the manifest and its shard side by side, so the manifest's relative path resolves.
    buildFaceApiResnet(await readTfjsWeightsFile(manifest.path), {
      source: manifest.path,
      metadata: {
        weights_sha256: bin.sha256,
        weights_file: path.basename(bin.path),
        weights_manifest_sha256: manifest.sha256,
      },
    }),
  );
}

/**
 * face-api.js's face recognition net (ResNet-34-like, dlib's `dlib_face_recognition_resnet_model_v1`) on
 * onnxruntime-node: 150×150 crops in, 128-d descriptors out.
 *
 * - {@link OnnxFaceApiEmbedder.embed} (the `FaceEmbedder` contract): L2-normalised vectors.
 * - {@link OnnxFaceApiEmbedder.describe}: face-api.js's raw descriptors (|d| ≈ 1.3–1.5) for 150×150 inputs.
 * - {@link OnnxFaceApiEmbedder.computeFaceDescriptors}: face-api.js's `computeFaceDescriptor` for whole
 *   images of any size (centred pad-to-square, tfjs bilinear resize to 150, then `describe`).
 *
 * Thresholds: face-api.js calls two raw descriptors the same person below a Euclidean distance of 0.6. Raw
 * norms are ≈ 1.35–1.6 (mean ≈ 1.47), so on the unit vectors from `embed` the equivalent is ≈ 0.4 (cosine
 * ≈ 0.92); use `describe` / `computeFaceDescriptors` to compare with stored face-api.js descriptors or
 * thresholds exactly.
 *
 * @example
 * const embedder = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 2, maxBatchSize: 16 });
 * const [raw] = await embedder.computeFaceDescriptors([await decodeImage(bytes)]); // as face-api.js
 * const [unit] = await embedder.embed([crop150]); // |unit| = 1
 */
export class OnnxFaceApiEmbedder extends FaceApiEmbedder {
  readonly graph: CachedGraph;
  readonly #ort: typeof import('onnxruntime-node');
  readonly #session: InferenceSession;

  private constructor(
    ort: typeof import('onnxruntime-node'),
    session: InferenceSession,
    graph: CachedGraph,
    precision: EmbedderPrecision,
    maxBatchSize: number | undefined,
  ) {
    super({
      provider: 'onnx',
      weightsSha256: graph.weightsSha256,
      preprocessing: FACEAPI_RESNET.preprocessing,
      precision,
      maxBatchSize,
    });
    this.#ort = ort;
    this.#session = session;
    this.graph = graph;
  }

  /**
   * Loads the model: pulls `faceapi-face-recognition-weights` and `-manifest` through the store, builds the
   * ONNX graph on first use (cached under `<cacheDir>/onnx/`; with `precision: 'int8'` also its int8 form, from
   * the shipped ranges or the calibration faces), and opens a session.
   */
  static async load(store: ModelStore, options: OnnxFaceApiEmbedderOptions): Promise<OnnxFaceApiEmbedder> {
    const fp32 = await loadFaceApiResnetGraph(store);
    const graph =
      options.precision === 'int8'
        ? await cachedInt8Graph(
            fp32,
            await int8Calibration('onnx faceapi-resnet', options.calibrationDir, FACEAPI_RESNET_INPUT_SIZE, {
              ranges: FACEAPI_RESNET_INT8_RANGES,
              weightsSha256: fp32.weightsSha256,
              graphVersion: FACEAPI_RESNET_GRAPH_LAYOUT,
            }),
            faceApiCalibrationBatch,
            options.intraOpNumThreads,
          )
        : fp32;
    const session = await createSession(graphSource(graph), { intraOpNumThreads: options.intraOpNumThreads });
    const ort = await loadOrt();
    return new OnnxFaceApiEmbedder(ort, session, graph, options.precision ?? 'fp32', options.maxBatchSize);
  }

  /** L2-normalised 128-d embeddings of 150×150 crops (`prepareFaceApiInput` makes one from a whole image). */
  protected runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    return this.#run(faces, 'embedding');
  }

  protected runDescriptors(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array> {
    return this.#run(inputs, 'descriptor');
  }

  async #run(
    inputs: readonly (RgbImage | FloatRgbImage)[],
    output: 'descriptor' | 'embedding',
  ): Promise<Float32Array> {
    const size = FACEAPI_RESNET_INPUT_SIZE;
    const input = new this.#ort.Tensor('float32', toFaceApiBatch(inputs, 'NCHW'), [
      inputs.length,
      3,
      size,
      size,
    ]);
    const result = await this.#session.run({ input }, [output]);
    return result[output]!.data as Float32Array;
  }

  protected async release(): Promise<void> {
    await this.#session.release();
  }
}
