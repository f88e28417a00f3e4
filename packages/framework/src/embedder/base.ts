import { CallGate } from '../call-gate.js';
import type { EmbedderPrecision, EmbedderPreprocessing, FaceEmbedder } from '../contracts/embedder.js';
import { assertEmbedderInputs } from '../contracts/validate.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { FacerecError } from '../errors.js';
import { UNIT_NORM_TOLERANCE } from '../gallery/format.js';
import type { RgbImage } from '../image/types.js';
import { DEFAULT_MAX_BATCH_SIZE } from '../registry/builtin.js';

/** What a {@link BaseEmbedder} subclass tells its base. */
export interface BaseEmbedderSettings {
  readonly provider: string;
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly dimension: number;
  readonly preprocessing: EmbedderPreprocessing;
  /** The precision the network runs at. Default `fp32`. */
  readonly precision?: EmbedderPrecision | undefined;
  /** Faces per {@link BaseEmbedder.runBatch} call. Default {@link DEFAULT_MAX_BATCH_SIZE}. */
  readonly maxBatchSize?: number | undefined;
}

/** A model returned something other than `count × dimension` finite numbers: a bug, not a caller's mistake. */
export class EmbedderOutputError extends FacerecError {
  static override readonly errorName: string = 'EmbedderOutputError';
  constructor(modelId: string, detail: string) {
    super('EMBEDDER_OUTPUT', `${modelId}: ${detail}`);
  }
}

/**
 * The one implementation of {@link FaceEmbedder}'s public behaviour, whichever runtime runs the network:
 * input validation (every crop checked before any inference), batching by `maxBatchSize`, output checks
 * (shape, finite values), and the dispose state. A provider implements {@link BaseEmbedder.runBatch} (one
 * forward pass over at most `maxBatchSize` crops) and {@link BaseEmbedder.release}.
 *
 * @example
 * class MyEmbedder extends BaseEmbedder {
 *   protected async runBatch(faces: readonly RgbImage[]) { return this.session.run(toTensor(faces)); }
 *   protected async release() { await this.session.close(); }
 * }
 */
export abstract class BaseEmbedder implements FaceEmbedder {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly provider: string;
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly dimension: number;
  readonly preprocessing: EmbedderPreprocessing;
  readonly precision: EmbedderPrecision;
  readonly maxBatchSize: number;
  /** Batches running now: {@link BaseEmbedder.dispose} waits for them before releasing the runtime. */
  readonly #batches: CallGate;

  protected constructor(settings: BaseEmbedderSettings) {
    this.provider = settings.provider;
    this.modelId = settings.modelId;
    this.weightsSha256 = settings.weightsSha256;
    this.dimension = settings.dimension;
    this.preprocessing = settings.preprocessing;
    this.precision = settings.precision ?? 'fp32';
    this.maxBatchSize = settings.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    this.#batches = new CallGate(`${this.provider} ${this.modelId} embedder`);
  }

  /**
   * One forward pass: `faces` (1 to `maxBatchSize` crops of exactly `preprocessing.inputSize`, already
   * validated) → `faces.length × dimension` L2-normalised values, row by row.
   */
  protected abstract runBatch(faces: readonly RgbImage[]): Promise<Float32Array>;

  /** Releases the runtime's resources; called once, by {@link BaseEmbedder.dispose}. */
  protected abstract release(): Promise<void> | void;

  async embed(faces: readonly RgbImage[]): Promise<Float32Array[]> {
    this.assertLive();
    assertEmbedderInputs(faces, this.preprocessing.inputSize, this.modelId);
    return this.inBatches(faces, (chunk) => this.runBatch(chunk));
  }

  /**
   * Splits `inputs` into chunks of at most `maxBatchSize`, runs each, and checks and splits the output rows
   * (unit vectors unless `unit` is false). Subclasses with other kinds of input or output (raw descriptors,
   * float images) reuse it.
   */
  protected async inBatches<T>(
    inputs: readonly T[],
    run: (chunk: readonly T[]) => Promise<Float32Array>,
    unit = true,
  ): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const d = this.dimension;
    for (let start = 0; start < inputs.length; start += this.maxBatchSize) {
      // Checked per chunk: a dispose() while an earlier chunk ran must not reach a released runtime.
      const chunk = inputs.slice(start, start + this.maxBatchSize);
      const rows = await this.#batches.run(() => run(chunk));
      if (rows.length !== chunk.length * d) {
        throw new EmbedderOutputError(
          this.modelId,
          `the model returned ${rows.length} values for ${chunk.length} faces; expected ${chunk.length} × ${d}`,
        );
      }
      for (let i = 0; i < rows.length; i++) {
        if (!Number.isFinite(rows[i]!)) {
          throw new EmbedderOutputError(
            this.modelId,
            `non-finite value in the embedding of face ${start + Math.floor(i / d)}`,
          );
        }
      }
      // No face embeds to exactly zero: an all-zero row is a broken model (a damaged weight gave them for every
      // face), which would otherwise match nothing, or everything, silently.
      for (let i = 0; i < chunk.length; i++) {
        const row = rows.subarray(i * d, (i + 1) * d);
        if (row.every((v) => v === 0)) {
          throw new EmbedderOutputError(
            this.modelId,
            `the embedding of face ${start + i} is all zeros (is the model file damaged?)`,
          );
        }
        // Galleries, thresholds and the distance kernels take unit vectors: a row of another length would match
        // at distances no threshold means (a custom embedder that forgot to normalise).
        if (!unit) continue;
        let squares = 0;
        for (const v of row) squares += v * v;
        const norm = Math.sqrt(squares);
        if (Math.abs(norm - 1) > UNIT_NORM_TOLERANCE) {
          throw new EmbedderOutputError(
            this.modelId,
            `the embedding of face ${start + i} has L2 norm ${norm.toPrecision(6)}, not 1: runBatch must return L2-normalised rows`,
          );
        }
      }
      for (let i = 0; i < chunk.length; i++) out.push(rows.slice(i * d, (i + 1) * d));
    }
    return out;
  }

  /** @throws DisposedError once {@link BaseEmbedder.dispose} was called. */
  protected assertLive(): void {
    this.#batches.assertOpen();
  }

  /**
   * Releases the model once the batches already running have finished. Later calls (and later chunks of a
   * running call) reject with `DisposedError`; a second `dispose()` does nothing.
   */
  async dispose(): Promise<void> {
    // A batch already running finishes on the live runtime (its call then stops at the next chunk).
    if (await this.#batches.close()) await this.release();
  }
}
