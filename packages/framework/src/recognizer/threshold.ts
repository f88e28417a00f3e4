/**
 * Which distance threshold applies: the caller's, a calibrated gallery's, or the embedder's recommended one
 * from the model registry. One rule for the library (`verify`, `recognize`) and the CLI, so a gallery that was
 * never calibrated (threshold 0) is matched at the shipped threshold everywhere instead of answering `unknown`
 * for every face.
 */
import type { EmbedderPrecision } from '../contracts/embedder.js';
import type { DistanceMetric } from '../contracts/gallery.js';
import { NoSuchModelError } from '../errors.js';
import type { GalleryCalibration } from '../gallery/types.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { EmbedderDescription, RecommendedThreshold } from '../registry/types.js';

/** Where a threshold came from: the caller, the gallery's calibration, or the embedder's registry entry. */
export type ThresholdSource = 'option' | 'gallery' | 'registry';

/** A threshold and where it came from. */
export interface ResolvedThreshold {
  readonly value: number;
  readonly source: ThresholdSource;
  /** For `registry`: the data and method it was measured with. */
  readonly measuredOn?: string;
}

/**
 * The registry entry of the embedder a model id stands for (`faceapi-resnet`, `inception-resnet-v1/vggface2`),
 * or `undefined` when no registered embedder makes that id.
 */
export function embedderDescriptionFor(
  registry: ModelRegistry,
  modelId: string,
): EmbedderDescription | undefined {
  try {
    return registry.embedderForModelId(modelId).description;
  } catch (error) {
    if (NoSuchModelError.isInstance(error)) return undefined;
    throw error;
  }
}

/** The embedder's recommended threshold for `metric` (from the registry), if it ships one. */
export function recommendedThreshold(
  registry: ModelRegistry,
  modelId: string,
  metric: DistanceMetric,
): RecommendedThreshold | undefined {
  return embedderDescriptionFor(registry, modelId)?.thresholds[metric];
}

/**
 * Why no threshold is known for `modelId` and `metric`, as one sentence for an error or warning: the
 * registry's own reason when it gives one.
 */
export function missingThresholdMessage(
  registry: ModelRegistry,
  modelId: string,
  metric: DistanceMetric,
): string {
  const description = embedderDescriptionFor(registry, modelId);
  const reason = description?.thresholdsMissingReason;
  return `no ${metric} threshold is known for ${modelId}${reason ? ` (${reason})` : ''}`;
}

/** What {@link resolveThreshold} weighs. */
export interface ThresholdInputs {
  /** The caller's threshold (an option or a flag); wins when given. */
  readonly explicit?: number | undefined;
  /** The gallery in use; its threshold counts when it was calibrated or set (above 0) and its metric is `metric`. */
  readonly gallery?:
    | { readonly threshold: number; readonly metric: DistanceMetric; readonly isCalibrated?: boolean }
    | undefined;
  readonly registry: ModelRegistry;
  /** The embedder's model id (the gallery's, or the loaded embedder's). */
  readonly modelId: string;
  readonly metric: DistanceMetric;
}

/**
 * The threshold to use: the explicit one, else the gallery's when it has one (calibrated, or set above 0:
 * enrollment writes 0 until calibration), else the embedder's recommended one from the registry; `undefined`
 * when there is none.
 *
 * @example
 * const t = resolveThreshold({ gallery, registry: MODELS, modelId: gallery.embedder.modelId, metric: gallery.metric });
 * if (t?.source === 'registry') console.warn(`uncalibrated gallery: using the recommended threshold ${t.value}`);
 */
export function resolveThreshold(inputs: ThresholdInputs): ResolvedThreshold | undefined {
  const { explicit, gallery, metric } = inputs;
  if (explicit !== undefined) return { value: explicit, source: 'option' };
  if (gallery && gallery.metric === metric && (gallery.threshold > 0 || gallery.isCalibrated === true)) {
    return { value: gallery.threshold, source: 'gallery' };
  }
  const recommended = recommendedThreshold(inputs.registry, inputs.modelId, metric);
  return recommended
    ? { value: recommended.value, source: 'registry', measuredOn: recommended.measuredOn }
    : undefined;
}

/**
 * Why a gallery's calibrated threshold may not hold for the queries at hand: one sentence when its calibration
 * recorded an embedder precision other than `precision` (the one the queries are embedded at), else
 * `undefined` (the same precision, or a calibration that did not record one). int8 and fp32 distances differ
 * by a few thousandths, enough to move the false-accept rate the threshold was chosen for.
 *
 * @example
 * const why = calibrationPrecisionMismatch(gallery.calibration, 'int8');
 * if (why) console.warn(`warning: ${why}`);
 */
export function calibrationPrecisionMismatch(
  calibration: Pick<GalleryCalibration, 'precision' | 'targetFar'> | undefined,
  precision: EmbedderPrecision,
): string | undefined {
  const calibrated = calibration?.precision;
  if (calibrated === undefined || calibrated === precision) return undefined;
  return (
    `the gallery's threshold was calibrated on ${calibrated} embeddings and the faces are embedded at ${precision}: ` +
    `its false-accept rate may differ from the ${calibration!.targetFar} it was calibrated for; calibrate it at ${precision}`
  );
}
