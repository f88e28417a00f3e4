/**
 * The model registry: every model described once (id, options, model store entries, input, crop policy,
 * thresholds, licence), and the provider skeleton that hands models out by id. Importable on its own as
 * `@facerec/framework/registry` (no image or inference code), e.g. by the CDK construct.
 *
 * @packageDocumentation
 */

export { EMBEDDER_PRECISIONS, type EmbedderPrecision } from '../contracts/embedder.js';
// Not a model fact, but what a deployment reads of the pipeline too: the metric names its alarms watch.
export { PIPELINE_METRICS } from '../contracts/metrics.js';
export {
  DEFAULT_MAX_BATCH_SIZE,
  defineDetector,
  defineEmbedder,
  FACEAPI_RESNET,
  FACENET_PREPROCESSING,
  type FaceApiResnetOptions,
  INCEPTION_RESNET_V1,
  INCEPTION_RESNET_V1_WEIGHTS,
  type InceptionResnetV1Options,
  type InceptionResnetV1Weights,
  inceptionResnetV1CheckpointPath,
  MTCNN,
} from './builtin.js';
export { assertGalleryFitsEmbedder, type GalleryFileSummary, readGallerySummary } from './gallery-check.js';
export {
  BODY_LIMITS,
  FUNCTION_VARIABLES,
  type LoadConfigOptions,
  loadConfig,
  PIPELINE_VARIABLES,
  type PipelineConfig,
  unknownVariables,
} from './pipeline-config.js';
export {
  BUILTIN_PROVIDERS,
  MODELS,
  ModelRegistry,
  type ProviderDescription,
  type RegistryDefaults,
  type ResolvedEmbedder,
} from './registry.js';
export type {
  DetectorDescription,
  EmbedderDescription,
  ModelDescription,
  ModelDescriptionBase,
  ModelLoadContext,
  ModelSettings,
  RecommendedThreshold,
} from './types.js';
