import type { z } from 'zod';
import type { FaceDetector } from '../contracts/detector.js';
import type { EmbedderPreprocessing, FaceEmbedder } from '../contracts/embedder.js';
import type { DistanceMetric } from '../contracts/gallery.js';
import type { FaceProvider } from '../contracts/provider.js';
import type { ModelStore } from '../models/store.js';

/** A distance below which two faces are called the same person, and where that value comes from. */
export interface RecommendedThreshold {
  readonly value: number;
  /** The data and method it was measured with (or the published source it is taken from). */
  readonly measuredOn: string;
}

/**
 * Deployment-level settings that every path exposes the same way (`FACEREC_WEIGHTS`, `--weights`, the
 * construct's `weights` prop). A model turns them into its own options; models without weights ignore them.
 */
export interface ModelSettings {
  /** Named weights (`vggface2`) or a checkpoint path, for models that have a choice of weights. */
  readonly weights?: string | undefined;
}

/** What a provider hands a model's loader. */
export interface ModelLoadContext {
  /** The provider loading the model (`onnx`, `tfjs`, …). */
  readonly provider: string;
  /** Where weights come from and converted graphs are cached (opened once per provider, on first use). */
  modelStore(): Promise<ModelStore>;
  /** Threads the provider may use per operator, when it has a thread setting. */
  readonly threads?: number | undefined;
  /**
   * The provider loading the model, to load another model of its registry: a detector wrapping the built-in
   * MTCNN gets it as `context.models?.detector('mtcnn', options)`, run by the same provider (its store, threads
   * and backend) rather than by a second one it would create. Set by `createFaceProvider`.
   */
  readonly models?: Pick<FaceProvider, 'detector' | 'embedder'>;
}

/** What every model description has. */
export interface ModelDescriptionBase<Options extends object> {
  /** The id callers pass to `provider.detector(id)` / `provider.embedder(id)`. */
  readonly id: string;
  /** One line for help texts and listings. */
  readonly summary: string;
  /** Licence of the weights (and where they come from). */
  readonly licence: string;
  /** Strict schema of the model's options: unknown keys are refused. */
  readonly options: z.ZodType<Options>;
  /** The model store entries (`models/manifest.json` names) these options need pulled. */
  manifestEntries(options: Options): readonly string[];
}

/** A face detector model, as every path (providers, CLI, Lambda config, construct) knows it. */
export interface DetectorDescription<Options extends object = object> extends ModelDescriptionBase<Options> {
  readonly kind: 'detector';
  /**
   * A provider-free implementation, used by every provider that has no implementation of its own for this
   * id (a detector written in plain TypeScript, or a test double).
   */
  load?(options: Options, context: ModelLoadContext): FaceDetector;
}

/** A face embedder model, as every path knows it: its input, crop policy, output and thresholds. */
export interface EmbedderDescription<Options extends object = object> extends ModelDescriptionBase<Options> {
  readonly kind: 'embedder';
  /** Embedding length. */
  readonly dimension: number;
  /**
   * Input size, standardisation and crop policy (canonical NCHW layout; a provider may feed the network in
   * another layout and says so in its embedder's own `preprocessing.layout`).
   */
  readonly preprocessing: EmbedderPreprocessing;
  /**
   * Recommended thresholds per metric, on L2-normalised embeddings; absent where none was measured. Used by
   * `verify` and by galleries that were never calibrated (threshold 0). `scripts/measure-thresholds.ts`
   * regenerates the built-in ones.
   */
  readonly thresholds: Readonly<Partial<Record<DistanceMetric, RecommendedThreshold>>>;
  /** Why no threshold is recommended, when {@link EmbedderDescription.thresholds} is empty (shown to users). */
  readonly thresholdsMissingReason?: string;
  /**
   * What the int8 activation ranges that ship for this model's published weights were measured on, where
   * such ranges ship (the onnx provider's int8 graph then needs no calibration faces); absent otherwise, and
   * `precision: 'int8'` needs calibration faces (`FACEREC_CALIBRATION_DIR`, the construct's `calibration`).
   */
  readonly int8Calibration?: string;
  /** The options that deployment settings stand for (e.g. `{ weights }` → InceptionResnetV1's `weights`). */
  fromSettings(settings: ModelSettings): Options;
  /** The model id a gallery records for an embedder built with `options` (e.g. `inception-resnet-v1/vggface2`). */
  modelId(options: Options): string;
  /**
   * The settings that rebuild the embedder a gallery recorded as `modelId`, or `undefined` when that id is
   * not this model's. `facerec serve` and `recognize` read the embedder from the gallery with it.
   */
  settingsForModelId(modelId: string): ModelSettings | undefined;
  /** A provider-free implementation, used by providers that have none of their own for this id. */
  load?(options: Options, context: ModelLoadContext): Promise<FaceEmbedder>;
}

/** Either kind of model description. */
export type ModelDescription = DetectorDescription | EmbedderDescription;
