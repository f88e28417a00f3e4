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
  type InceptionResnetV1StateDictOptions,
  TfjsInceptionResnetV1Embedder,
} from './embedder.js';
export { TfjsBackendUnavailableError } from './errors.js';
export {
  buildFaceApiResnet,
  FACEAPI_NHWC_PREPROCESSING,
  type FaceApiEmbedderOptions,
  TfjsFaceApiEmbedder,
} from './faceapi.js';
export { MTCNN_WEIGHTS, type MtcnnStateDicts, TfjsMtcnnNetworks } from './mtcnn.js';
export {
  createProvider,
  createTfjsProvider,
  TFJS_BACKEND_ENV,
  type TfjsProvider,
  type TfjsProviderOptions,
} from './provider.js';
