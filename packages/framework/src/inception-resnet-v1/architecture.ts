/**
 * facenet-pytorch's InceptionResnetV1 (`models/inception_resnet_v1.py`, `classify=False`, eval mode)
 * described as data, so every backend builds the same network from the same list. Names are the module
 * paths of the PyTorch model, i.e. the state-dict key prefixes.
 *
 * - `conv` is facenet-pytorch's `BasicConv2d`: `<name>.conv` (Conv2d without bias) → `<name>.bn`
 *   (BatchNorm2d, eps {@link INCEPTION_RESNET_V1_BATCH_NORM_EPS}) → ReLU.
 * - `maxpool`: MaxPool2d without padding, floor rounding.
 * - `mixed` (Mixed_6a, Mixed_7a): every branch applied to the input, concatenated along channels.
 * - `residual` (Block35, Block17, Block8): the branches concatenated, a 1×1 Conv2d with bias
 *   (`<name>.conv2d`) back to the block's width, times `scale`, plus the input, then ReLU unless `activation`
 *   is `'none'` (the final Block8, `noReLU=True`).
 * - head ({@link INCEPTION_RESNET_V1_HEAD}): global average pool → `last_linear` (no bias) → `last_bn` →
 *   L2 normalisation. The dropout before `last_linear` is the identity in eval mode.
 *
 * With the 160×160 input the spatial sizes are 160 → 79 (conv2d_1a) → 77 → 77 → 38 (maxpool_3a) → 38 → 36
 * → 17 (conv2d_4b) → 8 (mixed_6a) → 3 (mixed_7a), and the widths 256 (repeat_1), 896 (repeat_2), 1792
 * (repeat_3).
 */

/** facenet-pytorch's `BasicConv2d`: Conv2d (no bias) → BatchNorm2d → ReLU. */
export interface InceptionResnetV1Conv {
  readonly kind: 'conv';
  /** Key prefix: `<name>.conv.weight` (`[out, in, kh, kw]`) and `<name>.bn.*`. */
  readonly name: string;
  readonly in: number;
  readonly out: number;
  /** `[kh, kw]`. */
  readonly kernel: readonly [number, number];
  readonly stride: number;
  /** Zero padding `[ph, pw]` on both sides, as PyTorch's `padding=(ph, pw)`. */
  readonly padding: readonly [number, number];
}

/** MaxPool2d without padding, floor rounding (PyTorch's default `ceil_mode=False`). */
export interface InceptionResnetV1MaxPool {
  readonly kind: 'maxpool';
  /** Module path, e.g. `maxpool_3a` or `mixed_6a.branch2`; the pool has no weights. */
  readonly name: string;
  readonly kernel: number;
  readonly stride: number;
}

/** A layer of a branch or of the stem. */
export type InceptionResnetV1Layer = InceptionResnetV1Conv | InceptionResnetV1MaxPool;

/** One branch of a block: layers applied in order (a PyTorch `Sequential`, or a single module). */
export type InceptionResnetV1Branch = readonly InceptionResnetV1Layer[];

/** Mixed_6a / Mixed_7a: every branch on the input, outputs concatenated along channels. */
export interface InceptionResnetV1Mixed {
  readonly kind: 'mixed';
  readonly name: string;
  readonly branches: readonly InceptionResnetV1Branch[];
}

/** Block35 / Block17 / Block8: `activation(x + scale · conv2d(concat(branches(x))))`. */
export interface InceptionResnetV1Residual {
  readonly kind: 'residual';
  readonly name: string;
  readonly branches: readonly InceptionResnetV1Branch[];
  /** The 1×1 Conv2d with bias (`<name>.conv2d`) from the concatenated branches back to the block's width. */
  readonly projection: { readonly name: string; readonly in: number; readonly out: number };
  /** Residual scale: 0.17 (Block35), 0.10 (Block17), 0.20 (Block8), 1 for the final Block8. */
  readonly scale: number;
  /** `'none'` only for the final Block8 (`noReLU=True`). */
  readonly activation: 'relu' | 'none';
}

/** One step of {@link INCEPTION_RESNET_V1_BLOCKS}. */
export type InceptionResnetV1Block =
  | InceptionResnetV1Layer
  | InceptionResnetV1Mixed
  | InceptionResnetV1Residual;

/** Side of the square face crop InceptionResnetV1 takes. */
export const INCEPTION_RESNET_V1_INPUT_SIZE = 160;
/** Length of the embedding InceptionResnetV1 outputs. */
export const INCEPTION_RESNET_V1_EMBEDDING_SIZE = 512;
/** facenet-pytorch builds every BatchNorm here with eps=0.001 (TensorFlow's default, kept from the port). */
export const INCEPTION_RESNET_V1_BATCH_NORM_EPS = 0.001;
/**
 * Key prefix of the classifier that facenet-pytorch's pretrained files include (`logits.*`: 8631 classes for
 * VGGFace2, 10575 for CASIA-WebFace) and that embedding does not use.
 */
export const INCEPTION_RESNET_V1_CLASSIFIER_PREFIX = 'logits.';

const conv = (
  name: string,
  cin: number,
  cout: number,
  kernel: readonly [number, number],
  stride = 1,
  padding: readonly [number, number] = [0, 0],
): InceptionResnetV1Conv => ({ kind: 'conv', name, in: cin, out: cout, kernel, stride, padding });

const maxPool = (name: string): InceptionResnetV1MaxPool => ({ kind: 'maxpool', name, kernel: 3, stride: 2 });

const residual = (
  name: string,
  branches: readonly (readonly InceptionResnetV1Conv[])[],
  channels: number,
  scale: number,
  activation: 'relu' | 'none' = 'relu',
): InceptionResnetV1Residual => {
  const concat = branches.reduce((sum, b) => sum + b[b.length - 1]!.out, 0);
  return {
    kind: 'residual',
    name,
    branches,
    projection: { name: `${name}.conv2d`, in: concat, out: channels },
    scale,
    activation,
  };
};

// The block constructors mirror facenet-pytorch's Block35, Block17 and Block8 classes; each is instantiated
// several times under `repeat_N.i`.
const block35 = (p: string, scale: number) =>
  residual(
    p,
    [
      [conv(`${p}.branch0`, 256, 32, [1, 1])],
      [conv(`${p}.branch1.0`, 256, 32, [1, 1]), conv(`${p}.branch1.1`, 32, 32, [3, 3], 1, [1, 1])],
      [
        conv(`${p}.branch2.0`, 256, 32, [1, 1]),
        conv(`${p}.branch2.1`, 32, 32, [3, 3], 1, [1, 1]),
        conv(`${p}.branch2.2`, 32, 32, [3, 3], 1, [1, 1]),
      ],
    ],
    256,
    scale,
  );

/**
 * Block17 and Block8 share one shape: a 1×1 branch, and a 1×1 → 1×k → k×1 branch (a factorised k×k conv),
 * `width` channels wide; only the widths and k differ (128 and 7 for Block17, 192 and 3 for Block8).
 */
const factorisedBlock = (
  p: string,
  channels: number,
  width: number,
  k: number,
  scale: number,
  activation: 'relu' | 'none' = 'relu',
) => {
  const half = (k - 1) / 2;
  return residual(
    p,
    [
      [conv(`${p}.branch0`, channels, width, [1, 1])],
      [
        conv(`${p}.branch1.0`, channels, width, [1, 1]),
        conv(`${p}.branch1.1`, width, width, [1, k], 1, [0, half]),
        conv(`${p}.branch1.2`, width, width, [k, 1], 1, [half, 0]),
      ],
    ],
    channels,
    scale,
    activation,
  );
};

const block17 = (p: string, scale: number) => factorisedBlock(p, 896, 128, 7, scale);

const block8 = (p: string, scale: number, activation: 'relu' | 'none' = 'relu') =>
  factorisedBlock(p, 1792, 192, 3, scale, activation);

const repeat = <T>(count: number, make: (i: number) => T): T[] =>
  Array.from({ length: count }, (_, i) => make(i));

/**
 * The layers and blocks of InceptionResnetV1 up to the head, in order (`InceptionResnetV1.forward`): the
 * stem, 5 × Block35, Mixed_6a, 10 × Block17, Mixed_7a, 5 × Block8 and the final Block8 without ReLU.
 */
export const INCEPTION_RESNET_V1_BLOCKS: readonly InceptionResnetV1Block[] = Object.freeze([
  conv('conv2d_1a', 3, 32, [3, 3], 2),
  conv('conv2d_2a', 32, 32, [3, 3]),
  conv('conv2d_2b', 32, 64, [3, 3], 1, [1, 1]),
  maxPool('maxpool_3a'),
  conv('conv2d_3b', 64, 80, [1, 1]),
  conv('conv2d_4a', 80, 192, [3, 3]),
  conv('conv2d_4b', 192, 256, [3, 3], 2),
  ...repeat(5, (i) => block35(`repeat_1.${i}`, 0.17)),
  {
    kind: 'mixed',
    name: 'mixed_6a',
    branches: [
      [conv('mixed_6a.branch0', 256, 384, [3, 3], 2)],
      [
        conv('mixed_6a.branch1.0', 256, 192, [1, 1]),
        conv('mixed_6a.branch1.1', 192, 192, [3, 3], 1, [1, 1]),
        conv('mixed_6a.branch1.2', 192, 256, [3, 3], 2),
      ],
      [maxPool('mixed_6a.branch2')],
    ],
  },
  ...repeat(10, (i) => block17(`repeat_2.${i}`, 0.1)),
  {
    kind: 'mixed',
    name: 'mixed_7a',
    branches: [
      [conv('mixed_7a.branch0.0', 896, 256, [1, 1]), conv('mixed_7a.branch0.1', 256, 384, [3, 3], 2)],
      [conv('mixed_7a.branch1.0', 896, 256, [1, 1]), conv('mixed_7a.branch1.1', 256, 256, [3, 3], 2)],
      [
        conv('mixed_7a.branch2.0', 896, 256, [1, 1]),
        conv('mixed_7a.branch2.1', 256, 256, [3, 3], 1, [1, 1]),
        conv('mixed_7a.branch2.2', 256, 256, [3, 3], 2),
      ],
      [maxPool('mixed_7a.branch3')],
    ],
  },
  ...repeat(5, (i) => block8(`repeat_3.${i}`, 0.2)),
  block8('block8', 1, 'none'),
]);

/**
 * The embedding head after {@link INCEPTION_RESNET_V1_BLOCKS}: global average pool over the `features`
 * channels, `linear` (`<linear>.weight` `[embedding, features]`, no bias), `batchNorm` (BatchNorm1d, same
 * eps as every other), then `F.normalize` (L2, eps `normalizeEps`).
 */
export const INCEPTION_RESNET_V1_HEAD = Object.freeze({
  features: 1792,
  linear: 'last_linear',
  batchNorm: 'last_bn',
  embedding: INCEPTION_RESNET_V1_EMBEDDING_SIZE,
  normalizeEps: 1e-12,
} as const);
