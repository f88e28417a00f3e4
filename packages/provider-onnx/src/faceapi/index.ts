/**
 * face-api.js's face recognition net on onnxruntime-node, built from the tfjs weights that the npm package
 * `@vladmandic/face-api` ships.
 */
export {
  loadFaceApiResnetGraph,
  OnnxFaceApiEmbedder,
  type OnnxFaceApiEmbedderOptions,
} from './embedder.js';
export { buildFaceApiResnet, FACEAPI_RESNET_GRAPH_VERSION } from './graph.js';
