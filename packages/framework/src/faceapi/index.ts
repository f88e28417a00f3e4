/**
 * The provider-free parts of face-api.js's face recognition net: its architecture as data, the tfjs
 * weights-manifest reader, the walk over the architecture that folds the weights (`faceApiResnetTrunk`), the
 * exact input pipeline (centred pad-to-square, tfjs bilinear resize, mean/256 normalisation) and the
 * `FaceApiEmbedder` base class. The ONNX and tfjs providers build and feed the network from these.
 *
 * Descriptors: face-api.js returns them un-normalised (|d| ≈ 1.35–1.6, mean ≈ 1.47 on the bbt faces) and
 * matches faces by Euclidean distance, conventionally below 0.6 for "same person". `FaceEmbedder.embed`
 * returns them L2-normalised, which divides distances by about 1.47: the matching threshold on unit vectors
 * is then ≈ 0.4 (cosine similarity ≈ 0.92). Use the raw descriptors to reuse face-api.js thresholds or
 * stored face-api.js descriptors exactly.
 *
 * @packageDocumentation
 */
export {
  FACEAPI_RESNET_BLOCKS,
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_FC,
  FACEAPI_RESNET_FEATURES,
  FACEAPI_RESNET_INPUT_SIZE,
  type FaceApiResnetBlock,
  faceApiResnetWeightShapes,
} from './architecture.js';
export { faceApiResnetFc, faceApiResnetReader } from './checkpoint.js';
export { FaceApiEmbedder, type FaceApiResnetFiles, pullFaceApiResnetFiles } from './embedder.js';
export { type FaceApiConvMode, type FaceApiResnetOps, faceApiResnetTrunk } from './network.js';
export {
  assertFaceApiInput,
  FACEAPI_MEAN_RGB,
  FACEAPI_PIXEL_DIVISOR,
  FACEAPI_PREPROCESSING,
  type FloatRgbImage,
  faceApiInput,
  padToSquareCentered,
  prepareFaceApiInput,
  resizeBilinearTfjs,
  toFaceApiBatch,
} from './preprocess.js';
export {
  decodeTfjsWeights,
  parseTfjsWeightsManifest,
  readTfjsWeightsFile,
  type TfjsWeightEntry,
  type TfjsWeightsManifest,
  type TfjsWeightsOptions,
  tfjsWeightByteLength,
  tfjsWeightsManifestSchema,
} from './weights.js';
