/**
 * face-api.js's FaceRecognitionNet (a port of dlib's `dlib_face_recognition_resnet_model_v1`, ResNet-34-like)
 * described as data, so every backend builds the same network from the same list.
 *
 * Every conv layer is `conv2d(filters, bias) → ·scale.weights + scale.biases` (a per-channel affine, the
 * folded batch norm of the dlib original), followed by ReLU except where noted:
 *
 * - `stem` (`conv32_down`): 7×7 conv, stride 2, VALID padding, ReLU; then max-pool 3×3, stride 2, VALID.
 * - `residual` (`convN_k`): 3×3 SAME conv + ReLU → 3×3 SAME conv (no ReLU) → + input → ReLU.
 * - `residual-down` (`convN_down`): 3×3 VALID conv, stride 2, + ReLU → 3×3 SAME conv (no ReLU); shortcut:
 *   2×2 average pool, stride 2, VALID, with zero channels appended when the width doubles. When the conv
 *   path comes out one pixel smaller than the pooled shortcut (odd sizes), a zero row is appended at the
 *   bottom and a zero column at the right. Sum → ReLU.
 * - head: mean over H and W → `[N, 256]` · `fc` (`[256, 128]`, no bias) → the raw 128-d descriptor.
 *
 * With the 150×150 input the spatial sizes are 150 → 72 (stem conv) → 35 (max-pool) → 17 → 8 → 3 (+1 → 4)
 * → 1 (+1 → 2) → 1.
 */

/** One block of the network, named as in the weights manifest. */
export type FaceApiResnetBlock =
  | { readonly kind: 'stem'; readonly name: string; readonly in: number; readonly out: number }
  | { readonly kind: 'residual'; readonly name: string; readonly channels: number }
  | { readonly kind: 'residual-down'; readonly name: string; readonly in: number; readonly out: number };

/** The blocks of face-api.js's FaceRecognitionNet, in order (`FaceRecognitionNet.forwardInput`). */
export const FACEAPI_RESNET_BLOCKS: readonly FaceApiResnetBlock[] = Object.freeze([
  { kind: 'stem', name: 'conv32_down', in: 3, out: 32 },
  { kind: 'residual', name: 'conv32_1', channels: 32 },
  { kind: 'residual', name: 'conv32_2', channels: 32 },
  { kind: 'residual', name: 'conv32_3', channels: 32 },
  { kind: 'residual-down', name: 'conv64_down', in: 32, out: 64 },
  { kind: 'residual', name: 'conv64_1', channels: 64 },
  { kind: 'residual', name: 'conv64_2', channels: 64 },
  { kind: 'residual', name: 'conv64_3', channels: 64 },
  { kind: 'residual-down', name: 'conv128_down', in: 64, out: 128 },
  { kind: 'residual', name: 'conv128_1', channels: 128 },
  { kind: 'residual', name: 'conv128_2', channels: 128 },
  { kind: 'residual-down', name: 'conv256_down', in: 128, out: 256 },
  { kind: 'residual', name: 'conv256_1', channels: 256 },
  { kind: 'residual', name: 'conv256_2', channels: 256 },
  { kind: 'residual-down', name: 'conv256_down_out', in: 256, out: 256 },
] as const);

/** Side of the square image the network takes. */
export const FACEAPI_RESNET_INPUT_SIZE = 150;
/** Length of the descriptor. */
export const FACEAPI_RESNET_DESCRIPTOR_SIZE = 128;
/** Channels entering the fully connected layer. */
export const FACEAPI_RESNET_FEATURES = 256;
/** Name of the fully connected layer's weight (`[256, 128]`, applied as `features · fc`). */
export const FACEAPI_RESNET_FC = 'fc';

/**
 * Every weight the network uses, by its name in the tfjs manifest, with its tfjs shape (conv filters are
 * HWIO: `[kh, kw, in, out]`). A checkpoint is the FaceRecognitionNet exactly when it holds these and no others.
 */
export function faceApiResnetWeightShapes(): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  const convLayer = (prefix: string, k: number, cin: number, cout: number) => {
    shapes.set(`${prefix}/conv/filters`, [k, k, cin, cout]);
    shapes.set(`${prefix}/conv/bias`, [cout]);
    shapes.set(`${prefix}/scale/weights`, [cout]);
    shapes.set(`${prefix}/scale/biases`, [cout]);
  };
  for (const b of FACEAPI_RESNET_BLOCKS) {
    if (b.kind === 'stem') convLayer(b.name, 7, b.in, b.out);
    else if (b.kind === 'residual') {
      convLayer(`${b.name}/conv1`, 3, b.channels, b.channels);
      convLayer(`${b.name}/conv2`, 3, b.channels, b.channels);
    } else {
      convLayer(`${b.name}/conv1`, 3, b.in, b.out);
      convLayer(`${b.name}/conv2`, 3, b.out, b.out);
    }
  }
  shapes.set(FACEAPI_RESNET_FC, [FACEAPI_RESNET_FEATURES, FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  return shapes;
}
