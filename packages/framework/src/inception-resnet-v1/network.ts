import type { FoldedWeights } from '../checkpoint/fold.js';
import type { StateDictReader } from '../checkpoint/reader.js';
import {
  INCEPTION_RESNET_V1_BLOCKS,
  type InceptionResnetV1Branch,
  type InceptionResnetV1Conv,
  type InceptionResnetV1Layer,
  type InceptionResnetV1MaxPool,
  type InceptionResnetV1Residual,
} from './architecture.js';
import { foldedInceptionResnetV1Conv, scaledInceptionResnetV1Projection } from './checkpoint.js';

/**
 * What a runtime supplies to build InceptionResnetV1's trunk with {@link inceptionResnetV1Trunk}: one
 * function per kind of step. `L` is the runtime's notion of a layer (a tfjs forward function, a function
 * emitting ONNX nodes, …); the weights come folded, so no runtime reads or folds them itself.
 */
export interface InceptionResnetV1Ops<L> {
  /** `BasicConv2d`, its batch norm folded into `weights` (OIHW): convolution (stride, padding) → ReLU. */
  conv(layer: InceptionResnetV1Conv, weights: FoldedWeights): L;
  /** Max pool without padding, floor rounding. */
  maxPool(layer: InceptionResnetV1MaxPool): L;
  /** The layers applied one after another. */
  chain(layers: readonly L[]): L;
  /** Every branch applied to the same input, outputs concatenated along channels, in order. */
  concat(branches: readonly L[]): L;
  /**
   * Block35/17/8: `mixed` (the concatenated branches) → 1×1 convolution with `projection` (the residual scale
   * folded in) → + the block's input → ReLU, unless `block.activation` is `'none'`.
   */
  residual(mixed: L, block: InceptionResnetV1Residual, projection: FoldedWeights): L;
}

/**
 * InceptionResnetV1's trunk, every step of {@link INCEPTION_RESNET_V1_BLOCKS} up to the head (global average
 * pool, `last_linear`, `last_bn`), built with a runtime's `ops` from the weights in `r`, read in plan order.
 *
 * @throws CheckpointError when a weight is missing or has the wrong shape.
 * @example
 * ```ts
 * const r = inceptionResnetV1Reader(stateDict);
 * const trunk = inceptionResnetV1Trunk(r, myRuntimeOps);
 * const head = foldedInceptionResnetV1Head(r);
 * r.assertAllUsed();
 * ```
 */
export function inceptionResnetV1Trunk<L>(r: StateDictReader, ops: InceptionResnetV1Ops<L>): L {
  const layer = (step: InceptionResnetV1Layer): L =>
    step.kind === 'conv' ? ops.conv(step, foldedInceptionResnetV1Conv(r, step)) : ops.maxPool(step);
  const branches = (list: readonly InceptionResnetV1Branch[]): L =>
    ops.concat(list.map((branch) => ops.chain(branch.map(layer))));
  return ops.chain(
    INCEPTION_RESNET_V1_BLOCKS.map((step) => {
      if (step.kind === 'mixed') return branches(step.branches);
      if (step.kind === 'residual') {
        const mixed = branches(step.branches);
        return ops.residual(mixed, step, scaledInceptionResnetV1Projection(r, step));
      }
      return layer(step);
    }),
  );
}
