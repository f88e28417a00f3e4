/**
 * `@facerec/framework`: the contracts every facerec provider implements, their result types and errors, and
 * the provider-free parts — image decoding, the PyTorch checkpoint reader, the model store and the MTCNN
 * cascade. It never imports onnxruntime, TensorFlow.js or the AWS SDK.
 *
 * @packageDocumentation
 */
export * from './checkpoint/index.js';
export * from './contracts/index.js';
export { assertEmbedderInputs, assertRgbImage } from './contracts/validate.js';
export * from './embedder/index.js';
export * from './errors.js';
export * from './faceapi/index.js';
export { type AtomicWriteData, type WriteFileAtomicOptions, writeFileAtomic } from './fs.js';
export * from './gallery/index.js';
export * from './image/index.js';
export * from './inception-resnet-v1/index.js';
export * from './models/index.js';
export * from './mtcnn/index.js';
export { formatIssues, parseOptions } from './options.js';
export * from './recognizer/index.js';
export * from './registry/index.js';
export {
  type BuiltFaceProvider,
  createFaceProvider,
  type DetectorImplementation,
  type EmbedderImplementation,
  type FaceProviderSpec,
  implementDetector,
  implementEmbedder,
} from './registry/provider.js';
export * from './transport/index.js';
