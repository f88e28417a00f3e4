import type { FoldedWeights } from '../checkpoint/fold.js';
import type { StateDictReader } from '../checkpoint/reader.js';
import { FACEAPI_RESNET_BLOCKS, FACEAPI_RESNET_INPUT_SIZE } from './architecture.js';
import { foldedFaceApiConv } from './checkpoint.js';

/** How a face-api.js conv layer convolves: stride-2 VALID, or stride-1 SAME (odd kernels: (k − 1) / 2 each side). */
export type FaceApiConvMode = 'valid-stride2' | 'same';

/**
 * What a runtime supplies to build face-api.js's recognition net with {@link faceApiResnetTrunk}: one
 * function per kind of step. `L` is the runtime's notion of a layer (a tfjs forward function, a function
 * emitting ONNX nodes, …); the weights come folded, so no runtime reads or folds them itself.
 */
export interface FaceApiResnetOps<L> {
  /**
   * One conv layer, its bias and scale layer folded into `weights` (OIHW), named `prefix`; ReLU after it when
   * `relu`.
   */
  conv(prefix: string, weights: FoldedWeights, mode: FaceApiConvMode, relu: boolean): L;
  /** The stem's 3×3 max pool, stride 2, VALID, named `<name>/maxpool`. */
  maxPool(name: string): L;
  /** The layers applied one after another. */
  chain(layers: readonly L[]): L;
  /** face-api.js `residual`: `path(x) + x` → ReLU. */
  residual(path: L): L;
  /**
   * face-api.js `residualDown`: `path(x)` (which halves the size) with `grow` zero rows appended at the bottom
   * and `grow` zero columns at the right (odd input sizes), plus the shortcut — a 2×2 average pool of `x`,
   * stride 2, VALID, with zero channels appended from `block.in` to `block.out` — then ReLU.
   */
  residualDown(
    path: L,
    block: { readonly name: string; readonly in: number; readonly out: number },
    grow: number,
  ): L;
}

/** Output side of a VALID window of `kernel` at `stride` (TensorFlow: ⌈(n − k + 1) / s⌉). */
const validSize = (n: number, kernel: number, stride: number) => Math.floor((n - kernel) / stride) + 1;

/**
 * face-api.js's FaceRecognitionNet up to its head (the mean over H and W, then `fc`, see `faceApiResnetFc`):
 * every block of {@link FACEAPI_RESNET_BLOCKS} on the 150×150 input, built with a runtime's `ops` from the
 * weights in `r`, read in plan order. The spatial size is followed here, so the odd-size padding of
 * `residualDown` comes out the same on every runtime.
 *
 * @throws CheckpointError when a weight is missing or has the wrong shape.
 */
export function faceApiResnetTrunk<L>(r: StateDictReader, ops: FaceApiResnetOps<L>): L {
  const conv = (
    prefix: string,
    kernel: number,
    cin: number,
    cout: number,
    mode: FaceApiConvMode,
    relu: boolean,
  ) => ops.conv(prefix, foldedFaceApiConv(r, prefix, kernel, cin, cout), mode, relu);
  let size = FACEAPI_RESNET_INPUT_SIZE;
  const layers = FACEAPI_RESNET_BLOCKS.map((block) => {
    if (block.kind === 'stem') {
      const stem = conv(block.name, 7, block.in, block.out, 'valid-stride2', true);
      size = validSize(validSize(size, 7, 2), 3, 2);
      return ops.chain([stem, ops.maxPool(block.name)]);
    }
    if (block.kind === 'residual') {
      const { name, channels } = block;
      return ops.residual(
        ops.chain([
          conv(`${name}/conv1`, 3, channels, channels, 'same', true),
          conv(`${name}/conv2`, 3, channels, channels, 'same', false),
        ]),
      );
    }
    const path = ops.chain([
      conv(`${block.name}/conv1`, 3, block.in, block.out, 'valid-stride2', true),
      conv(`${block.name}/conv2`, 3, block.out, block.out, 'same', false),
    ]);
    const grow = validSize(size, 2, 2) - validSize(size, 3, 2);
    size = validSize(size, 2, 2);
    return ops.residualDown(path, block, grow);
  });
  return ops.chain(layers);
}
