/**
 * facenet-pytorch's MTCNN networks (P-Net, R-Net, O-Net) rebuilt as ONNX graphs from their state dicts.
 * Layer order, kernel sizes and the channel-last flatten are those of facenet-pytorch's `models/mtcnn.py`;
 * the weights only give correct results with exactly that wiring.
 */
import type { StateDict } from '@facerec/framework';
import { GraphBuilder } from './builder.js';
import { type BuildGraphOptions, validateBuildOptions } from './options.js';
import { StateDictReader } from './weights.js';

function start(
  architecture: string,
  stateDict: StateDict,
  options: BuildGraphOptions | undefined,
): { g: GraphBuilder; w: StateDictReader } {
  const { metadata, source } = validateBuildOptions(`build${architecture}`, options);
  const g = new GraphBuilder({
    name: architecture.toLowerCase(),
    docString: `facenet-pytorch MTCNN ${architecture}`,
    metadata: { ...metadata, facerec_architecture: `facenet-pytorch/mtcnn/${architecture.toLowerCase()}` },
  });
  const w = new StateDictReader(stateDict, {
    model: architecture,
    ...(source === undefined ? {} : { source }),
  });
  return { g, w };
}

/** Conv2d (with bias, stride 1, no padding) + PReLU, taking `convN.*` and `preluN.weight`. */
function convPrelu(
  g: GraphBuilder,
  w: StateDictReader,
  x: string,
  conv: string,
  prelu: string,
  cin: number,
  cout: number,
  k: number,
): string {
  const y = g.conv(
    x,
    { weight: w.take(`${conv}.weight`, [cout, cin, k, k]), bias: w.take(`${conv}.bias`, [cout]) },
    conv,
  );
  return g.prelu(y, w.take(`${prelu}.weight`, [cout]), 4, prelu);
}

function linear(
  g: GraphBuilder,
  w: StateDictReader,
  x: string,
  name: string,
  cin: number,
  cout: number,
  output?: string,
): string {
  return g.gemm(
    x,
    {
      weight: w.take(`${name}.weight`, [cout, cin]),
      bias: w.take(`${name}.bias`, [cout]),
      ...(output === undefined ? {} : { output }),
    },
    name,
  );
}

/**
 * facenet-pytorch flattens `[N, C, H, W]` as `x.permute(0, 3, 2, 1).view(N, -1)` (a Caffe legacy: W, H, C
 * order), and the dense layers' weights are laid out for that order.
 */
function flattenLikeCaffe(g: GraphBuilder, x: string): string {
  return g.flatten(g.transpose(x, [0, 3, 2, 1]), 1);
}

/**
 * Builds facenet-pytorch's P-Net (proposal network) as ONNX bytes.
 *
 * Input `input`: `[N, 3, H, W]` float32 (H, W ≥ 12, any size). Outputs: `reg` `[N, 4, h, w]` box offsets
 * and `prob` `[N, 2, h, w]` softmax over channels (channel 1 = face), with h = ⌈(H − 2) / 2⌉ − 4 and
 * likewise for w.
 *
 * @param stateDict - the `pnet.pt` state dict (`conv1.weight`, `prelu1.weight`, …, `conv4_2.bias`).
 * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of P-Net.
 * @example
 * ```ts
 * const bytes = buildPNet(await readCheckpointFile('pnet.pt'), { metadata: { weights_sha256: sha } });
 * ```
 */
export function buildPNet(stateDict: StateDict, options?: BuildGraphOptions): Uint8Array {
  const { g, w } = start('PNet', stateDict, options);
  let x = g.input('input', ['N', 3, 'H', 'W']);
  x = convPrelu(g, w, x, 'conv1', 'prelu1', 3, 10, 3);
  x = g.maxPool(x, { kernel: [2, 2], strides: [2, 2], ceilMode: true }, 'pool1');
  x = convPrelu(g, w, x, 'conv2', 'prelu2', 10, 16, 3);
  x = convPrelu(g, w, x, 'conv3', 'prelu3', 16, 32, 3);
  const logits = g.conv(
    x,
    { weight: w.take('conv4_1.weight', [2, 32, 1, 1]), bias: w.take('conv4_1.bias', [2]) },
    'conv4_1',
  );
  const prob = g.softmax(logits, 1, 'prob');
  const reg = g.conv(
    x,
    { weight: w.take('conv4_2.weight', [4, 32, 1, 1]), bias: w.take('conv4_2.bias', [4]), output: 'reg' },
    'conv4_2',
  );
  w.assertAllUsed();
  g.output(reg, 'reg', ['N', 4, 'h', 'w']);
  g.output(prob, 'prob', ['N', 2, 'h', 'w']);
  return g.toBytes();
}

/**
 * Builds facenet-pytorch's R-Net (refinement network) as ONNX bytes.
 *
 * Input `input`: `[N, 3, 24, 24]`. Outputs: `reg` `[N, 4]` and `prob` `[N, 2]` (softmax).
 *
 * @param stateDict - the `rnet.pt` state dict.
 * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of R-Net.
 */
export function buildRNet(stateDict: StateDict, options?: BuildGraphOptions): Uint8Array {
  const { g, w } = start('RNet', stateDict, options);
  let x = g.input('input', ['N', 3, 24, 24]);
  x = convPrelu(g, w, x, 'conv1', 'prelu1', 3, 28, 3);
  x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }, 'pool1');
  x = convPrelu(g, w, x, 'conv2', 'prelu2', 28, 48, 3);
  x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }, 'pool2');
  x = convPrelu(g, w, x, 'conv3', 'prelu3', 48, 64, 2);
  x = flattenLikeCaffe(g, x);
  x = linear(g, w, x, 'dense4', 576, 128);
  x = g.prelu(x, w.take('prelu4.weight', [128]), 2, 'prelu4');
  const prob = g.softmax(linear(g, w, x, 'dense5_1', 128, 2), 1, 'prob');
  const reg = linear(g, w, x, 'dense5_2', 128, 4, 'reg');
  w.assertAllUsed();
  g.output(reg, 'reg', ['N', 4]);
  g.output(prob, 'prob', ['N', 2]);
  return g.toBytes();
}

/**
 * Builds facenet-pytorch's O-Net (output network) as ONNX bytes.
 *
 * Input `input`: `[N, 3, 48, 48]`. Outputs: `reg` `[N, 4]`, `landmarks` `[N, 10]` (five x values, then five
 * y values, relative to the box) and `prob` `[N, 2]` (softmax).
 *
 * @param stateDict - the `onet.pt` state dict.
 * @throws CheckpointError when a key is missing, has the wrong shape, or is not part of O-Net.
 */
export function buildONet(stateDict: StateDict, options?: BuildGraphOptions): Uint8Array {
  const { g, w } = start('ONet', stateDict, options);
  let x = g.input('input', ['N', 3, 48, 48]);
  x = convPrelu(g, w, x, 'conv1', 'prelu1', 3, 32, 3);
  x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }, 'pool1');
  x = convPrelu(g, w, x, 'conv2', 'prelu2', 32, 64, 3);
  x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }, 'pool2');
  x = convPrelu(g, w, x, 'conv3', 'prelu3', 64, 64, 3);
  x = g.maxPool(x, { kernel: [2, 2], strides: [2, 2], ceilMode: true }, 'pool3');
  x = convPrelu(g, w, x, 'conv4', 'prelu4', 64, 128, 2);
  x = flattenLikeCaffe(g, x);
  x = linear(g, w, x, 'dense5', 1152, 256);
  x = g.prelu(x, w.take('prelu5.weight', [256]), 2, 'prelu5');
  const prob = g.softmax(linear(g, w, x, 'dense6_1', 256, 2), 1, 'prob');
  const reg = linear(g, w, x, 'dense6_2', 256, 4, 'reg');
  const landmarks = linear(g, w, x, 'dense6_3', 256, 10, 'landmarks');
  w.assertAllUsed();
  g.output(reg, 'reg', ['N', 4]);
  g.output(landmarks, 'landmarks', ['N', 10]);
  g.output(prob, 'prob', ['N', 2]);
  return g.toBytes();
}
