/**
 * `@facerec/framework`: what facerec's users and plugin authors need — the contracts (`FaceProvider`,
 * `FaceDetector`, `FaceEmbedder`, `Gallery`, `Transport`), the errors, image decoding, the model registry and
 * model store, the MTCNN detector, galleries (enrollment, calibration, matching), `createFaceRecognizer`,
 * and `BaseEmbedder` / `createFaceProvider` for new models and providers. It never imports onnxruntime,
 * TensorFlow.js or the AWS SDK.
 *
 * The building blocks providers and transports are made of (network architectures, the cascade's pieces,
 * resamplers, weight readers, message helpers) are in `@facerec/framework/internal`; the model registry alone
 * (no image or inference code) is `@facerec/framework/registry`.
 *
 * @packageDocumentation
 */
export {
  checkpointFormat,
  DEFAULT_MAX_CHECKPOINT_BYTES,
  type NamedTensor,
  type ReadCheckpointOptions,
  readCheckpoint,
  readCheckpointFile,
  type StateDict,
  type TensorDType,
} from './checkpoint/index.js';
export * from './contracts/index.js';
export { assertRgbImage } from './contracts/validate.js';
export * from './embedder/index.js';
export * from './errors.js';
export * from './gallery/index.js';
export {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeImage,
  encodeJpeg,
  encodePng,
  MAX_DECODE_LIMITS,
  type RgbImage,
  readImageFile,
  SUPPORTED_IMAGE_FORMATS,
  type SupportedImageFormat,
} from './image/index.js';
export * from './models/index.js';
export {
  DEFAULT_MTCNN_OPTIONS,
  describeCropPolicy,
  extractFace,
  fitFaceCrop,
  implementMtcnn,
  MIN_FACE_SIZE_SETTING,
  MtcnnDetector,
  type MtcnnNetworks,
  type MtcnnOptions,
  mtcnnOptionsSchema,
  type ONetOutput,
  type PNetOutput,
  type PNetRunOptions,
  parseDetectFacesOptions,
  type RNetOutput,
  recordedCropPolicySchema,
  type SelectionMethod,
  sameCropPolicy,
} from './mtcnn/index.js';
export { formatIssues, parseOptions } from './options.js';
export * from './recognizer/index.js';
export * from './registry/index.js';
export {
  type BuiltFaceProvider,
  createFaceProvider,
  type DetectorImplementation,
  type EmbedderImplementation,
  type FaceProviderOptions,
  type FaceProviderSpec,
  faceProviderOptionsSchema,
  implementDetector,
  implementEmbedder,
} from './registry/provider.js';
export {
  InvalidMessageError,
  InvalidReceiptError,
  MessageTooLargeError,
  type PreparedMessage,
  prepareOutboundMessages,
  type ReceiveLimits,
  type ResolvedReceiveOptions,
  resolveReceiveOptions,
} from './transport/index.js';
