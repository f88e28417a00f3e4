/**
 * facenet-pytorch's MTCNN networks (`models/mtcnn.py`: PNet, RNet, ONet) described as data, so every backend
 * builds the same networks from the same lists. Names are the PyTorch module names, i.e. the state-dict key
 * prefixes; the weights only give correct results with exactly this wiring.
 *
 * - `conv`: Conv2d with bias, stride 1, no padding (`<name>.weight` `[out, in, k, k]`, `<name>.bias`), then
 *   PReLU with one slope per channel (`<prelu>.weight` `[out]`).
 * - `maxpool`: MaxPool2d with `ceil_mode=True` (a last, partial window is kept), no padding.
 * - `flatten`: `x.permute(0, 3, 2, 1).reshape(N, -1)`, a Caffe legacy: the feature map is read in W, H, C
 *   order, and the following dense layer's weights expect that order.
 * - `dense`: Linear with bias (`<name>.weight` `[out, in]`), then PReLU (`<prelu>.weight` `[out]`).
 * - heads: the output layers, all applied to the last feature (1×1 convolutions on P-Net's map, dense layers
 *   on R-Net's and O-Net's vector); the face/background pair goes through a softmax over channels.
 */

/** Conv2d (bias, stride 1, no padding) followed by a per-channel PReLU. */
export interface MtcnnConv {
  readonly kind: 'conv';
  /** Key prefix of the convolution, e.g. `conv1`. */
  readonly name: string;
  /** Key prefix of its PReLU, e.g. `prelu1`. */
  readonly prelu: string;
  readonly in: number;
  readonly out: number;
  /** Square kernel side. */
  readonly kernel: number;
}

/** MaxPool2d with `ceil_mode=True`, no padding. */
export interface MtcnnMaxPool {
  readonly kind: 'maxpool';
  /** Module name, e.g. `pool1`; the pool has no weights. */
  readonly name: string;
  readonly kernel: number;
  readonly stride: number;
}

/**
 * The last feature map `[N, channels, height, width]` flattened in Caffe's W, H, C order
 * (`x.permute(0, 3, 2, 1)`), which is the order the next dense layer's weight columns follow.
 */
export interface MtcnnFlatten {
  readonly kind: 'flatten';
  readonly order: 'caffe';
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

/** Linear (with bias) followed by a per-channel PReLU. */
export interface MtcnnDense {
  readonly kind: 'dense';
  /** Key prefix of the linear layer, e.g. `dense4`. */
  readonly name: string;
  /** Key prefix of its PReLU, e.g. `prelu4`. */
  readonly prelu: string;
  readonly in: number;
  readonly out: number;
}

/** One layer of a network's trunk. */
export type MtcnnLayer = MtcnnConv | MtcnnMaxPool | MtcnnFlatten | MtcnnDense;

/** What a network returns: box offsets, face probabilities, or (O-Net) five landmarks. */
export type MtcnnOutputName = 'reg' | 'prob' | 'landmarks';

/**
 * An output layer on the trunk's last feature: a 1×1 Conv2d (`conv`, on P-Net's map) or a Linear (`dense`),
 * with bias, no PReLU; `softmax` is over the channels (`nn.Softmax(dim=1)`).
 */
export interface MtcnnHead {
  readonly kind: 'conv' | 'dense';
  /** Key prefix, e.g. `conv4_1` or `dense6_3`. */
  readonly name: string;
  readonly in: number;
  readonly out: number;
  readonly output: MtcnnOutputName;
  readonly activation: 'softmax' | 'none';
}

/** One of the three networks. */
export interface MtcnnNetworkArchitecture {
  /** Class name in facenet-pytorch (`PNet`, `RNet`, `ONet`), used in error messages. */
  readonly name: string;
  /** Input channels (RGB) and side of the square input; `undefined` for P-Net, which takes any size ≥ 12. */
  readonly input: { readonly channels: number; readonly size: number | undefined };
  readonly layers: readonly MtcnnLayer[];
  /** Output layers in state-dict order (the order facenet-pytorch's `forward` computes them). */
  readonly heads: readonly MtcnnHead[];
  /** The outputs in the order `forward` returns them. */
  readonly outputs: readonly MtcnnOutputName[];
}

const conv = (i: number, cin: number, cout: number, kernel: number): MtcnnConv => ({
  kind: 'conv',
  name: `conv${i}`,
  prelu: `prelu${i}`,
  in: cin,
  out: cout,
  kernel,
});

const pool = (i: number, kernel: number, stride: number): MtcnnMaxPool => ({
  kind: 'maxpool',
  name: `pool${i}`,
  kernel,
  stride,
});

const head = (
  kind: MtcnnHead['kind'],
  name: string,
  cin: number,
  cout: number,
  output: MtcnnOutputName,
): MtcnnHead => ({
  kind,
  name,
  in: cin,
  out: cout,
  output,
  activation: output === 'prob' ? 'softmax' : 'none',
});

/**
 * P-Net, the proposal network: fully convolutional, run on every level of the image pyramid. With an input of
 * H×W the output maps are h×w with h = ⌈(H − 2) / 2⌉ − 4 (one cell per 12×12 window at stride 2).
 */
export const MTCNN_PNET: MtcnnNetworkArchitecture = Object.freeze({
  name: 'PNet',
  input: Object.freeze({ channels: 3, size: undefined }),
  layers: Object.freeze([conv(1, 3, 10, 3), pool(1, 2, 2), conv(2, 10, 16, 3), conv(3, 16, 32, 3)]),
  heads: Object.freeze([head('conv', 'conv4_1', 32, 2, 'prob'), head('conv', 'conv4_2', 32, 4, 'reg')]),
  outputs: Object.freeze(['reg', 'prob'] as const),
});

/** R-Net, the refinement network, on 24×24 crops: 24 → 22 → 11 → 9 → 4 → 3. */
export const MTCNN_RNET: MtcnnNetworkArchitecture = Object.freeze({
  name: 'RNet',
  input: Object.freeze({ channels: 3, size: 24 }),
  layers: Object.freeze([
    conv(1, 3, 28, 3),
    pool(1, 3, 2),
    conv(2, 28, 48, 3),
    pool(2, 3, 2),
    conv(3, 48, 64, 2),
    { kind: 'flatten', order: 'caffe', channels: 64, height: 3, width: 3 },
    { kind: 'dense', name: 'dense4', prelu: 'prelu4', in: 576, out: 128 },
  ] as const),
  heads: Object.freeze([head('dense', 'dense5_1', 128, 2, 'prob'), head('dense', 'dense5_2', 128, 4, 'reg')]),
  outputs: Object.freeze(['reg', 'prob'] as const),
});

/** O-Net, the output network, on 48×48 crops: 48 → 46 → 23 → 21 → 10 → 8 → 4 → 3. */
export const MTCNN_ONET: MtcnnNetworkArchitecture = Object.freeze({
  name: 'ONet',
  input: Object.freeze({ channels: 3, size: 48 }),
  layers: Object.freeze([
    conv(1, 3, 32, 3),
    pool(1, 3, 2),
    conv(2, 32, 64, 3),
    pool(2, 3, 2),
    conv(3, 64, 64, 3),
    pool(3, 2, 2),
    conv(4, 64, 128, 2),
    { kind: 'flatten', order: 'caffe', channels: 128, height: 3, width: 3 },
    { kind: 'dense', name: 'dense5', prelu: 'prelu5', in: 1152, out: 256 },
  ] as const),
  heads: Object.freeze([
    head('dense', 'dense6_1', 256, 2, 'prob'),
    head('dense', 'dense6_2', 256, 4, 'reg'),
    head('dense', 'dense6_3', 256, 10, 'landmarks'),
  ]),
  outputs: Object.freeze(['reg', 'landmarks', 'prob'] as const),
});

/** The three networks by the key the cascade and the providers use. */
export const MTCNN_ARCHITECTURES = Object.freeze({
  pnet: MTCNN_PNET,
  rnet: MTCNN_RNET,
  onet: MTCNN_ONET,
} as const);
