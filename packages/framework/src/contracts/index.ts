export type { Box, FaceDetection, FaceDetector, FiveLandmarks, Point } from './detector.js';
export type { EmbedderPreprocessing, FaceEmbedder } from './embedder.js';
export type {
  DistanceMetric,
  Gallery,
  GalleryEmbedderInfo,
  GalleryMatch,
  IdentityAggregation,
  IdentityCandidate,
  MatchOptions,
} from './gallery.js';
export type { OutboundMessage, ReceivedMessage, ReceiveOptions, Transport } from './transport.js';
export type { SpecificationVersion } from './version.js';
export { SPECIFICATION_VERSION } from './version.js';
