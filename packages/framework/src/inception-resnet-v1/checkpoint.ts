import { type FoldedWeights, foldBatchNorm, scaleTensor } from '../checkpoint/fold.js';
import { isTrainingOnlyKey, StateDictReader } from '../checkpoint/reader.js';
import type { StateDict } from '../checkpoint/types.js';
import {
  INCEPTION_RESNET_V1_BATCH_NORM_EPS,
  INCEPTION_RESNET_V1_CLASSIFIER_PREFIX,
  INCEPTION_RESNET_V1_HEAD,
  type InceptionResnetV1Conv,
  type InceptionResnetV1Residual,
} from './architecture.js';

/**
 * Keys an InceptionResnetV1 checkpoint may hold that the embedding network does not use: batch-norm step
 * counters, and the `logits.*` classifier of facenet-pytorch's pretrained VGGFace2 and CASIA-WebFace files.
 * Pass it as `ignore` to a `StateDictReader`.
 */
export function isUnusedInceptionResnetV1Key(key: string): boolean {
  return isTrainingOnlyKey(key) || key.startsWith(INCEPTION_RESNET_V1_CLASSIFIER_PREFIX);
}

/**
 * The reader every InceptionResnetV1 builder takes its weights through: errors name the model (and `source`),
 * and the keys of {@link isUnusedInceptionResnetV1Key} are neither required nor reported as unexpected.
 *
 * @example
 * ```ts
 * const r = inceptionResnetV1Reader(await readCheckpointFile(file), file);
 * for (const step of INCEPTION_RESNET_V1_BLOCKS) { ... } // taking each layer's weights from r
 * r.assertAllUsed();
 * ```
 */
export function inceptionResnetV1Reader(stateDict: StateDict, source?: string): StateDictReader {
  return new StateDictReader(stateDict, {
    model: 'InceptionResnetV1',
    ignore: isUnusedInceptionResnetV1Key,
    ...(source === undefined ? {} : { source }),
  });
}

/**
 * A `BasicConv2d`'s weights with its batch norm folded in: the convolution `[out, in, kh, kw]` (PyTorch OIHW)
 * and a bias `[out]`. The layer is then one convolution followed by ReLU.
 */
export function foldedInceptionResnetV1Conv(r: StateDictReader, layer: InceptionResnetV1Conv): FoldedWeights {
  const { name, in: cin, out: cout, kernel } = layer;
  return foldBatchNorm(
    { weight: r.take(`${name}.conv.weight`, [cout, cin, kernel[0], kernel[1]]) },
    r.takeBatchNorm(`${name}.bn`, cout, INCEPTION_RESNET_V1_BATCH_NORM_EPS),
  );
}

/**
 * A residual block's 1×1 up-projection `[out, in, 1, 1]` and its bias, both multiplied by the block's residual
 * scale, which is exact up to one float32 rounding: the block is then concat → conv → + x (→ ReLU).
 */
export function scaledInceptionResnetV1Projection(
  r: StateDictReader,
  block: InceptionResnetV1Residual,
): FoldedWeights {
  const { name, in: cin, out: cout } = block.projection;
  return {
    weight: scaleTensor(r.take(`${name}.weight`, [cout, cin, 1, 1]), block.scale),
    bias: scaleTensor(r.take(`${name}.bias`, [cout]), block.scale),
  };
}

/** The head's `last_linear` (`[512, 1792]`, no bias of its own) with `last_bn` folded in, and the bias that gives. */
export function foldedInceptionResnetV1Head(r: StateDictReader): FoldedWeights {
  const head = INCEPTION_RESNET_V1_HEAD;
  return foldBatchNorm(
    { weight: r.take(`${head.linear}.weight`, [head.embedding, head.features]) },
    r.takeBatchNorm(head.batchNorm, head.embedding, INCEPTION_RESNET_V1_BATCH_NORM_EPS),
  );
}
