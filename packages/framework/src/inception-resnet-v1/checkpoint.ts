import { isTrainingOnlyKey } from '../checkpoint/reader.js';
import { INCEPTION_RESNET_V1_CLASSIFIER_PREFIX } from './architecture.js';

/**
 * Keys an InceptionResnetV1 checkpoint may hold that the embedding network does not use: batch-norm step
 * counters, and the `logits.*` classifier of facenet-pytorch's pretrained VGGFace2 and CASIA-WebFace files.
 * Pass it as `ignore` to a `StateDictReader`.
 */
export function isUnusedInceptionResnetV1Key(key: string): boolean {
  return isTrainingOnlyKey(key) || key.startsWith(INCEPTION_RESNET_V1_CLASSIFIER_PREFIX);
}
