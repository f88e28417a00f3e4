/**
 * Builds ONNX graphs for facenet-pytorch's networks straight from their PyTorch state dicts, so the
 * upstream `.pt` files can be used without Python or a conversion step.
 */
export {
  type Attribute,
  attr,
  type ConvOptions,
  type Dim,
  GraphBuilder,
  type GraphBuilderOptions,
  type LinearOptions,
  type MaxPoolOptions,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  PRODUCER_NAME,
} from './builder.js';
// Static int8 (QDQ) quantization of these graphs, calibrated by running them.
export { type CalibrationBatch, calibrateRanges, quantizeStatic } from './calibrate.js';
export { buildInceptionResnetV1 } from './inception-resnet-v1.js';
export { buildONet, buildPNet, buildRNet } from './mtcnn.js';
// The ONNX protobuf codec, whole: model and tensor types, data and attribute type codes, encode and decode.
export * from './onnx-schema.js';
export { type BuildGraphOptions, validateBuildOptions } from './options.js';
export {
  type ActivationRange,
  activationParams,
  calibrationModel,
  observeRange,
  quantizeModel,
  quantizeWeightsPerChannel,
} from './quantize.js';
export { type CreateSessionOptions, createSession } from './session.js';
