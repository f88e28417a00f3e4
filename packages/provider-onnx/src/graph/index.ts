/**
 * Builds ONNX graphs for facenet-pytorch's networks straight from their PyTorch state dicts, so the
 * upstream `.pt` files can be used without Python or a conversion step.
 */

// Defined once in the framework's description of the network; re-exported for compatibility.
export {
  INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  isUnusedInceptionResnetV1Key,
} from '@facerec/framework/internal';
export {
  type Attribute,
  attr,
  type BatchNormParams,
  type ConvOptions,
  type Dim,
  foldBatchNorm,
  GraphBuilder,
  type GraphBuilderOptions,
  type LinearOptions,
  type MaxPoolOptions,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  PRODUCER_NAME,
  scaleTensor,
} from './builder.js';
export { buildInceptionResnetV1 } from './inception-resnet-v1.js';
export { buildONet, buildPNet, buildRNet } from './mtcnn.js';
export {
  decodeModel,
  encodeModel,
  type OnnxAttribute,
  OnnxAttributeType,
  OnnxDataType,
  type OnnxDimension,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from './onnx-schema.js';
export { type BuildGraphOptions, validateBuildOptions } from './options.js';
export { type CreateSessionOptions, createSession } from './session.js';
export {
  type FloatTensor,
  isTrainingOnlyKey,
  StateDictReader,
  type StateDictReaderOptions,
} from './weights.js';
