/**
 * `@facerec/provider-onnx`: facenet-pytorch's MTCNN and InceptionResnetV1 on onnxruntime-node, with graphs
 * built in TypeScript from the upstream PyTorch checkpoints.
 *
 * @packageDocumentation
 */
export {
  type InceptionResnetV1GraphInfo,
  type InceptionResnetV1LoadReport,
  loadInceptionResnetV1Graph,
  OnnxInceptionResnetV1Embedder,
  type OnnxInceptionResnetV1LoadOptions,
} from './embedder.js';
export { GraphBuildError, OnnxRuntimeUnavailableError } from './errors.js';
export * from './faceapi/index.js';
export * from './graph/index.js';
export {
  CALIBRATION_DIR_ENV,
  type EmbedderPrecision,
  isCalibrationImage,
  QUANTIZER_VERSION,
} from './int8.js';
export {
  type CachedGraph,
  cachedGraph,
  cachedOnnxFile,
  GRAPH_BUILDER_VERSION,
  graphSource,
} from './model-cache.js';
export { type MtcnnLoadReport, OnnxMtcnnNetworks } from './mtcnn.js';
export {
  createOnnxProvider,
  createProvider,
  type OnnxProvider,
  type OnnxProviderOptions,
} from './provider.js';
