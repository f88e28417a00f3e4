/**
 * The provider-free recognition core: the gallery file format, exact nearest-neighbour matching, enrollment
 * from a folder of images, and threshold calibration.
 *
 * @packageDocumentation
 */
export type {
  CalibrationOptions,
  CalibrationResult,
  LabelledProbe,
  OperatingPoint,
  RocCurve,
} from './calibrate.js';
export {
  calibrateThreshold,
  calibrateThresholdLeaveOneOut,
  equalErrorRate,
  formatCalibration,
  KEY_FARS,
  operatingPointAtFar,
  rocCurve,
} from './calibrate.js';
export type {
  EnrolledFile,
  EnrollmentDetector,
  EnrollOptions,
  EnrollProgress,
  EnrollResult,
  MultipleFacesPolicy,
  SkippedFile,
  SkipReason,
} from './enroll.js';
export { ENROLL_EXTENSIONS, enrollGallery } from './enroll.js';
export type { GalleryFormatIssue } from './errors.js';
export { EmbedderMismatchError, GalleryFormatError, UnknownIdentityError } from './errors.js';
export type { GalleryFileV1 } from './format.js';
export {
  EMBEDDING_ENCODING,
  GALLERY_FORMAT,
  GALLERY_FORMAT_VERSION,
  UNIT_NORM_TOLERANCE,
  UNKNOWN_IDENTITY,
} from './format.js';
export type { GallerySearchOptions } from './gallery.js';
export { FileGallery } from './gallery.js';
export type { DotKernelName } from './kernel.js';
export { wasmSimdAvailable } from './kernel.js';
export type {
  CalibrationPoint,
  GalleryCalibration,
  GalleryData,
  GalleryExample,
  GalleryIdentityInput,
} from './types.js';
export { distanceFromDot } from './vectors.js';
