export {
  alignedCropTransform,
  applySimilarity,
  DLIB_FIVE_POINT_TEMPLATE,
  eyesMouthSquare,
  fitSimilarity,
  type Similarity,
  warpFootprint,
  warpSimilarity,
} from './align.js';
export {
  MTCNN_ARCHITECTURES,
  MTCNN_ONET,
  MTCNN_PNET,
  MTCNN_RNET,
  type MtcnnConv,
  type MtcnnDense,
  type MtcnnFlatten,
  type MtcnnHead,
  type MtcnnLayer,
  type MtcnnMaxPool,
  type MtcnnNetworkArchitecture,
  type MtcnnOutputName,
} from './architecture.js';
export { boxArea, pyramidLevels, pyramidScales, runMtcnnCascade } from './cascade.js';
export {
  CROP_SHAPES,
  describeCropPolicy,
  parseCropPolicy,
  parseDetectFacesOptions,
  recordedCropPolicySchema,
  sameCropPolicy,
} from './crop.js';
export { implementMtcnn, MtcnnDetector } from './detector.js';
export { cropBox, extractFace, fitFaceCrop, selectFace, squareAround, standardiseCrop } from './extract.js';
export type { MtcnnNetworks, ONetOutput, PNetOutput, PNetRunOptions, RNetOutput } from './networks.js';
export type { NmsMode } from './nms.js';
export { nms } from './nms.js';
export type { MtcnnOptions, ResolvedMtcnnOptions, SelectionMethod } from './options.js';
export {
  DEFAULT_MTCNN_OPTIONS,
  MIN_FACE_SIZE_SETTING,
  mtcnnOptionsSchema,
  resolveMtcnnOptions,
} from './options.js';
export type { FrameSampler, SamplingKind } from './sampling.js';
export { FrameSampling } from './sampling.js';
