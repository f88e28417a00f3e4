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
