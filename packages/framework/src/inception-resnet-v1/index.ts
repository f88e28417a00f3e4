/**
 * facenet-pytorch's InceptionResnetV1 described once, as data: the blocks, the head and the checkpoint keys
 * the embedding network ignores, and the one walk over them that reads and folds the weights
 * (`inceptionResnetV1Trunk`). The onnx and tfjs providers both build the network from these.
 *
 * @packageDocumentation
 */
export {
  INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  INCEPTION_RESNET_V1_BLOCKS,
  INCEPTION_RESNET_V1_CLASSIFIER_PREFIX,
  INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  INCEPTION_RESNET_V1_HEAD,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  type InceptionResnetV1Block,
  type InceptionResnetV1Branch,
  type InceptionResnetV1Conv,
  type InceptionResnetV1Layer,
  type InceptionResnetV1MaxPool,
  type InceptionResnetV1Mixed,
  type InceptionResnetV1Residual,
} from './architecture.js';
export {
  foldedInceptionResnetV1Head,
  inceptionResnetV1Reader,
  isUnusedInceptionResnetV1Key,
} from './checkpoint.js';
export { type InceptionResnetV1Ops, inceptionResnetV1Trunk } from './network.js';
