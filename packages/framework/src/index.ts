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
export * from './errors.js';
export * from './faceapi/index.js';
export * from './gallery/index.js';
export * from './image/index.js';
export * from './models/index.js';
export * from './mtcnn/index.js';
export { EMBEDDER_OPTION_SCHEMAS, formatIssues, parseOptions } from './options.js';
export * from './transport/index.js';
