/**
 * Test utilities for facerec providers and transports: the conformance suites every detector, embedder and
 * transport must pass, and helpers that locate the shared reference data. Imports `vitest`; use it from test
 * files only.
 */

export { linkFaceApiCalibrationCrops } from './calibration-crops.js';
export type { DetectorConformanceOptions, EmbedderConformanceOptions } from './conformance.js';
export {
  describeDetectorConformance,
  describeEmbedderConformance,
} from './conformance.js';
export { thrownBy } from './errors.js';
export {
  type FakePreprocessingOptions,
  fakeDetector,
  fakeDetectorDescription,
  fakeEmbedderDescription,
  fakePreprocessing,
} from './fakes.js';
export {
  CONFORMANCE_EMBEDDER,
  describeGalleryStoreConformance,
  type GalleryStoreConformanceHarness,
} from './gallery-conformance.js';
export { sharedMirrorStore } from './mirror-store.js';
export {
  expectMtcnnParity,
  formatMtcnnParity,
  iou,
  type MtcnnParityReport,
  type MtcnnParityTestsOptions,
  type MtcnnReferenceImage,
  mtcnnParityReport,
  mtcnnParityTests,
  readMtcnnReference,
  referenceBoxes,
} from './mtcnn-parity.js';
export { MTCNN_STATE_DICT_SHAPES } from './mtcnn-shapes.js';
export { seededRandom } from './random.js';
export {
  describeWhenAvailable,
  describeWithSharedData,
  SHARED_DIR_ENV,
  sharedDir,
  sharedPath,
} from './shared-data.js';
export {
  readSyntheticReference,
  type SyntheticReference,
  type SyntheticTensorKey,
  syntheticStateDict,
  withoutTensor,
  withTensor,
} from './synthetic-weights.js';
export { describeTransportConformance, type TransportConformanceHarness } from './transport-conformance.js';
export {
  centred,
  centredCorrelation,
  cosine,
  dot,
  type EmbeddingAgreement,
  embeddingAgreement,
  modelAndLegacyEmbedding,
} from './vectors.js';
