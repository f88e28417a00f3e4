export { NoFaceError } from './errors.js';
export {
  type DetectFaces,
  type PrecroppedFallbackOptions,
  precroppedDetectFaces,
  withPrecroppedFallback,
} from './precropped.js';
export {
  createFaceRecognizer,
  type EmbeddedFace,
  type FaceRecognizer,
  type FaceRecognizerOptions,
  type Photo,
  type RecognizedFace,
  type RecognizeOptions,
  type Verification,
  type VerifyOptions,
} from './recognizer.js';
export {
  calibrationPrecisionMismatch,
  embedderDescriptionFor,
  missingThresholdMessage,
  type ResolvedThreshold,
  recommendedThreshold,
  resolveThreshold,
  type ThresholdInputs,
  type ThresholdSource,
} from './threshold.js';
