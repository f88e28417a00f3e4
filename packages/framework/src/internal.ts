/**
 * `@facerec/framework/internal`: the building blocks facerec's providers and transports are made of — network
 * architectures as data, the MTCNN cascade's pieces, resamplers, checkpoint and tfjs weight readers, input
 * checks, message helpers, atomic writes. For plugin authors; application code needs only
 * `@facerec/framework`. Everything public is re-exported here too, so a provider imports from one place.
 * These exports may change in any minor version.
 *
 * @packageDocumentation
 */

export { CallGate } from './call-gate.js';
export * from './checkpoint/index.js';
export { assertEmbedderInputs, assertRgbImage } from './contracts/validate.js';
export * from './faceapi/index.js';
export {
  type AtomicWriteData,
  makeFolder,
  readFileUpTo,
  sha256OfFile,
  sweepStaleTemporaries,
  type WriteFileAtomicOptions,
  writeFileAtomic,
} from './fs.js';
export { shownDistance } from './gallery/calibrate.js';
export {
  checkIdentityName,
  checkPage,
  type PreparedExample,
  prepareExamples,
  storableSource,
  storedTextIssue,
  visibleText,
} from './gallery/collection.js';
export { kindOf, readLabelledFolder } from './gallery/enroll.js';
export { galleryUnreachable, refusalDetails, unreachableCode } from './gallery/errors.js';
export {
  calibrationSchema,
  checkThresholdSetting,
  embedderPreprocessingSchema,
  galleryTooLarge,
  MAX_GALLERY_FILE_BYTES,
  metricSchema,
  thresholdSchema,
  zodIssues,
} from './gallery/format.js';
export { matchOf, resolveMatchOptions } from './gallery/gallery.js';
export { logGallerySwap, swapDetails } from './gallery/snapshot-store.js';
export { norm, normaliseInto } from './gallery/vectors.js';
export { readImageSize } from './image/decode.js';
export * from './image/index.js';
export * from './inception-resnet-v1/index.js';
export * from './index.js';
export * from './mtcnn/index.js';
export { importOptionalPackage } from './optional-import.js';
export { withTimeout } from './timeout.js';
export * from './transport/index.js';
