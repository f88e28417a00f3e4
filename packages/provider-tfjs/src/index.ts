/**
 * `@facerec/provider-tfjs`: facenet-pytorch's MTCNN and InceptionResnetV1 on TensorFlow.js (`tensorflow`,
 * `wasm` or `cpu` backend), with weights read straight from the upstream PyTorch checkpoints, and face-api.js's
 * face recognition net (`faceapi-resnet`) from its own tfjs weights.
 *
 * @packageDocumentation
 */
export {
  type BackendProbe,
  backendLogLine,
  type SelectBackendOptions,
  type SelectedBackend,
  selectBackend,
  TFJS_BACKEND_PACKAGES,
  TFJS_BACKENDS,
  type TfjsBackendName,
  type TfjsLogger,
} from './backend.js';
export {
  FACENET_NHWC_PREPROCESSING,
  INCEPTION_RESNET_V1_WEIGHTS,
  type InceptionResnetV1StateDictOptions,
  type InceptionResnetV1Weights,
  TfjsInceptionResnetV1Embedder,
} from './embedder.js';
export { TfjsBackendUnavailableError } from './errors.js';
export {
  buildFaceApiResnet,
  FACEAPI_NHWC_PREPROCESSING,
  FACEAPI_RESNET_STORE_ENTRIES,
  type FaceApiEmbedderOptions,
  TfjsFaceApiEmbedder,
} from './faceapi.js';
export {
  INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  isUnusedInceptionResnetV1Key,
} from './inception-resnet-v1.js';
export { MTCNN_WEIGHTS, type MtcnnStateDicts, TfjsMtcnnNetworks } from './mtcnn.js';
export {
  createTfjsProvider,
  type FaceApiResnetOptions,
  type InceptionResnetV1Options,
  TFJS_DETECTOR_MODELS,
  TFJS_EMBEDDER_MODELS,
  type TfjsDetectorModelId,
  type TfjsEmbedderModelId,
  type TfjsProvider,
  type TfjsProviderOptions,
} from './provider.js';
