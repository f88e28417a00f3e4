/**
 * Test utilities for facerec providers: the conformance suites every detector and embedder must pass, and
 * helpers that locate the shared reference data. Imports `vitest`; use it from test files only.
 */

export type { DetectorConformanceOptions, EmbedderConformanceOptions } from './conformance.js';
export {
  describeDetectorConformance,
  describeEmbedderConformance,
} from './conformance.js';
export { sharedMirrorStore } from './mirror-store.js';
export {
  formatMtcnnParity,
  type MtcnnParityReport,
  type MtcnnReferenceImage,
  mtcnnParityReport,
  readMtcnnReference,
} from './mtcnn-parity.js';
export { seededRandom } from './random.js';
export { describeWithSharedData, SHARED_DIR_ENV, sharedDir, sharedPath } from './shared-data.js';
export {
  readSyntheticReference,
  type SyntheticReference,
  type SyntheticTensorKey,
  syntheticStateDict,
} from './synthetic-weights.js';
