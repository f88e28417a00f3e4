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
  type OperatingPoint,
  operatingPointAtFar,
  type RocCurve,
  rocCurve,
} from './calibrate.js';
export {
  ENROLL_EXTENSIONS,
  type EnrolledFile,
  type EnrollmentDetector,
  type EnrollOptions,
  type EnrollProgress,
  type EnrollResult,
  enrollGallery,
  type MultipleFacesPolicy,
  type SkippedFile,
  type SkipReason,
} from './enroll.js';
export {
  EmbedderMismatchError,
  GalleryFormatError,
  type GalleryFormatIssue,
  UnknownIdentityError,
} from './errors.js';
export {
  EMBEDDING_ENCODING,
  GALLERY_FORMAT,
  GALLERY_FORMAT_VERSION,
  type GalleryFileV1,
  UNIT_NORM_TOLERANCE,
  UNKNOWN_IDENTITY,
} from './format.js';
export { FileGallery, type GallerySearchOptions } from './gallery.js';
export { type DotKernelName, wasmSimdAvailable } from './kernel.js';
export type {
  CalibrationPoint,
  GalleryCalibration,
  GalleryData,
  GalleryExample,
  GalleryIdentityInput,
} from './types.js';
export { distanceFromDot } from './vectors.js';
