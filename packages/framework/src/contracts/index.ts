export type {
  Box,
  DetectedFaces,
  DetectFacesOptions,
  FaceCrop,
  FaceDetection,
  FaceDetector,
  FiveLandmarks,
  Point,
  WarmUpFrame,
} from './detector.js';
export {
  CALIBRATION_DIR_ENV,
  type CropPolicy,
  type CropShape,
  EMBEDDER_PRECISIONS,
  type EmbedderPrecision,
  type EmbedderPreprocessing,
  type FaceEmbedder,
} from './embedder.js';
export type {
  DistanceMetric,
  Gallery,
  GalleryEmbedderInfo,
  GalleryMatch,
  GalleryPreprocessing,
  IdentityAggregation,
  IdentityCandidate,
  MatchOptions,
} from './gallery.js';
export type {
  AddedExample,
  ExamplePage,
  GalleryStore,
  ListExamplesOptions,
  ListPageOptions,
  NewExample,
  StoredExample,
} from './gallery-store.js';
export { PIPELINE_METRICS } from './metrics.js';
export type {
  DetectorId,
  DetectorOptionsById,
  DetectorOptionsFor,
  EmbedderId,
  EmbedderOptionsById,
  EmbedderOptionsFor,
  FaceProvider,
  ProviderFactory,
  ProviderSettings,
} from './provider.js';
export type {
  OutboundMessage,
  PublishOptions,
  ReceivedMessage,
  ReceiveOptions,
  Transport,
} from './transport.js';
export type { SpecificationVersion } from './version.js';
export { SPECIFICATION_VERSION } from './version.js';
