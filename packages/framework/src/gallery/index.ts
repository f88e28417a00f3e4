/**
 * The provider-free recognition core: the gallery file format, exact nearest-neighbour matching, enrollment
 * from a folder of images, and threshold calibration.
 *
 * @packageDocumentation
 */
export {
  type CalibrationOptions,
  type CalibrationResult,
  calibrateThreshold,
  calibrateThresholdLeaveOneOut,
  equalErrorRate,
  formatCalibration,
  KEY_FARS,
  type LabelledProbe,
  type LeaveOneOutOptions,
  MAX_IMPOSTOR_PAIRS,
  MIN_GENUINE_PAIRS,
  type OperatingPoint,
  operatingPointAtFar,
  type ProbeCalibrationOptions,
  type ProbeOverlap,
  type RejectedPair,
  type RocCurve,
  rocCurve,
} from './calibrate.js';
export {
  type AddFacesOptions,
  addFacesFromPhotos,
  exampleId,
  identityNameIssue,
  type LookAlike,
  MAX_IDENTITY_NAME_LENGTH,
  MAX_SOURCE_LENGTH,
  type PhotoExample,
  reservedIdentityIssue,
  sourceIssue,
} from './collection.js';
export { assertEmbedderCompatible } from './compatibility.js';
export {
  ENROLL_EXTENSIONS,
  type EnrolledFile,
  type EnrolledLookAlike,
  type EnrollmentDetector,
  type EnrollOptions,
  type EnrollProgress,
  type EnrollResult,
  enrollGallery,
  findLookAlikes,
  type MultipleFacesPolicy,
  type SkippedFile,
  type SkipReason,
} from './enroll.js';
export {
  EmbedderMismatchError,
  GalleryFormatError,
  type GalleryFormatIssue,
  type GalleryFormatProblem,
  GalleryStoreNotFoundError,
  UnknownExampleError,
  UnknownIdentityError,
} from './errors.js';
export { FileGalleryStore, type FileGalleryStoreOptions } from './file-store.js';
export {
  EMBEDDING_ENCODING,
  GALLERY_FORMAT,
  GALLERY_FORMAT_VERSION,
  type GalleryFileV1,
  NO_FACE_RESULT,
  UNIT_NORM_TOLERANCE,
  UNKNOWN_IDENTITY,
} from './format.js';
export { FileGallery, type GallerySearchOptions } from './gallery.js';
export { type DotKernelName, wasmSimdAvailable } from './kernel.js';
export {
  GALLERY_STORE_PACKAGES,
  type GalleryStoreLogger,
  type GalleryStoreOpener,
  type OpenGalleryStoreOptions,
  openGalleryStore,
} from './open.js';
export {
  DEFAULT_MAX_YAW,
  DEFAULT_MIN_SHARPNESS,
  defaultMinFaceSize,
  estimateYaw,
  type FaceQuality,
  type FaceQualityOptions,
  type QualityReason,
  sharpness,
} from './quality.js';
export {
  type GalleryReloadDetails,
  GalleryWriteConflictError,
  type RefreshOutcome,
  SnapshotGalleryStore,
  type SnapshotGalleryStoreOptions,
  type StoredGalleryText,
} from './snapshot-store.js';
export type {
  CalibrationPoint,
  GalleryCalibration,
  GalleryData,
  GalleryExample,
  GalleryIdentityInput,
} from './types.js';
export { distanceFromDot } from './vectors.js';
