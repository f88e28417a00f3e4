/**
 * facenet-pytorch's MTCNN networks (P-Net, R-Net, O-Net) rebuilt as ONNX graphs from their state dicts. The
 * layers, kernel sizes, pools, channel-last flatten and heads are the framework's `MTCNN_ARCHITECTURES`
 * (facenet-pytorch's `models/mtcnn.py`), from which the tfjs provider builds its networks too; this file only
 * decides how each step is lowered to ONNX operators (see the layout notes below).
 */
import type { StateDict } from '@facerec/framework';
import {
  MTCNN_ONET,
  MTCNN_PNET,
  MTCNN_RNET,
  type MtcnnConv,
  type MtcnnFlatten,
  type MtcnnHead,
  type MtcnnMaxPool,
  type MtcnnNetworkArchitecture,
  type MtcnnOutputName,
  StateDictReader,
} from '@facerec/framework/internal';
import { GraphBuildError } from '../errors.js';
import { GraphBuilder, type MaxPoolOptions } from './builder.js';
import { type BuildGraphOptions, validateBuildOptions } from './options.js';

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

/**
 * How the networks are laid out for onnxruntime's CPU kernels. The function computed is facenet-pytorch's
 * exactly (every rewrite below gives the same float32 values; the parity tests compare against PyTorch's
 * outputs), but the operators are chosen for onnxruntime's blocked-channel (NCHWc) convolutions, its
 * fastest on x86:
 *
 * - **No `PRelu` on feature maps.** The blocked layout has no PRelu kernel, so a `PRelu` after each conv
 *   made onnxruntime convert the whole activation tensor out of the blocked layout and back, which cost more
 *   than the convolution itself on the R-Net batch. It is written with operators the layout keeps (Relu,
 *   per-channel Mul, Add): `prelu(x) = relu(x) + (−a)·relu(−x)`, bit-for-bit the same value (for x > 0 it is
 *   x + (−a)·0 = x, otherwise 0 + (−a)·(−x), and (−a)·(−x) rounds exactly like a·x since negation is exact).
 *   `max(x, a·x)` also equals prelu for every slope ≤ 1 (negative ones too), and `min(x, a·x)` for those
 *   above 1, which negating such channels' convolution turns into a max as well: exact (R-Net's outputs
 *   bit-for-bit equal), but `Max` leaves the blocked layout, and R-Net ran 1.5× slower that way (64 crops,
 *   4.6 against 3.0 ms, interleaved on a 2-core Zen 5 EPYC).
 * - **Channel counts padded to a multiple of 16** (the block size with AVX-512; 8 with AVX2 divides it):
 *   a tensor with 28 channels falls back to the plain layout, with conversions around it. Padding channels
 *   have zero weights and bias, so they stay 0 and add exact zeros to the next layer.
 * - **P-Net pools before its first activation** (the first conv of a network with a free input size, when
 *   a pool follows it; R-Net and O-Net keep the plain order). Its first feature map is the largest tensor of
 *   the whole cascade (10 channels at 60 % of the frame's resolution). Max-pooling commutes with the activation, by
 *   convexity: over any window, the largest `prelu(x)` is at the window's largest or smallest x (prelu is
 *   convex for a ≤ 1 and increasing for a ≥ 1). So `maxpool(prelu(x)) = max(prelu(maxpool(x)),
 *   prelu(−maxpool(−x)))`, which needs the convolution's negation only for the channels with a negative
 *   slope (for a ≥ 0 prelu is increasing and the first term is the maximum) — 10 + 6 = 16 channels, one
 *   block — and leaves all activation work at a quarter of the resolution. Rounding preserves the argument:
 *   float32 `prelu` is still monotonic on each side of 0.
 */
const CHANNEL_BLOCK = 16;

const padChannels = (c: number): number => Math.ceil(c / CHANNEL_BLOCK) * CHANNEL_BLOCK;

/** `prelu(x) = relu(x) + (−a)·relu(−x)` with per-channel slopes `a` (see the notes above). */
function preluBlocked(g: GraphBuilder, x: string, slope: Float32Array, name: string): string {
  const positive = g.relu(x);
  const negated = g.relu(g.mulChannels(x, new Float32Array(slope.length).fill(-1), `${name}.negate`));
  return g.add(
    positive,
    g.mulChannels(
      negated,
      slope.map((a) => -a),
      `${name}.slope`,
    ),
  );
}

/**
 * Conv2d (with bias, stride 1, no padding) + PReLU, taking `convN.*` and `preluN.weight`. The input has
 * `x.channels` ≥ `cin` channels (the extra ones are padding, always 0); the output is padded to a multiple
 * of {@link CHANNEL_BLOCK}. Returns the output and its channel count.
 */
function convPrelu(
  g: GraphBuilder,
  w: StateDictReader,
  x: { value: string; channels: number },
  layer: MtcnnConv,
): { value: string; channels: number } {
  const { name: conv, prelu, in: cin, out: cout, kernel: k } = layer;
  const weight = w.takeData(`${conv}.weight`, [cout, cin, k, k]);
  const bias = w.takeData(`${conv}.bias`, [cout]);
  const slope = w.takeData(`${prelu}.weight`, [cout]);
  const outChannels = padChannels(cout);
  const inChannels = x.channels;
  const paddedWeight = new Float32Array(outChannels * inChannels * k * k);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      paddedWeight.set(
        weight.subarray((o * cin + i) * k * k, (o * cin + i + 1) * k * k),
        (o * inChannels + i) * k * k,
      );
    }
  }
  const grow = (v: Float32Array) => {
    const out = new Float32Array(outChannels);
    out.set(v);
    return out;
  };
  const y = g.conv(
    x.value,
    {
      weight: { dims: [outChannels, inChannels, k, k], data: paddedWeight },
      bias: { dims: [outChannels], data: grow(bias) },
    },
    conv,
  );
  return { value: preluBlocked(g, y, grow(slope), prelu), channels: outChannels };
}

/**
 * P-Net's `conv1 → prelu1 → pool1`, pooling first (see the notes above): one convolution producing the
 * feature map and, for each channel with a negative slope, its negation; one max-pool; then at the pooled
 * resolution `max(prelu(max), prelu(min))` per channel, where 1×1 convolutions with 0/1 weights pick the
 * channels (a sum with one non-zero term is exact).
 */
function convPreluPoolFirst(
  g: GraphBuilder,
  w: StateDictReader,
  x: string,
  layer: MtcnnConv,
  pool: MaxPoolOptions,
): string {
  const { name: conv, prelu, in: cin, out: cout, kernel: k } = layer;
  const weight = w.takeData(`${conv}.weight`, [cout, cin, k, k]);
  const bias = w.takeData(`${conv}.bias`, [cout]);
  const slope = w.takeData(`${prelu}.weight`, [cout]);
  const negative = [...slope.keys()].filter((c) => slope[c]! < 0);
  const channels = padChannels(cout + negative.length);
  const per = cin * k * k;
  const both = new Float32Array(channels * per);
  const bothBias = new Float32Array(channels);
  both.set(weight);
  bothBias.set(bias);
  negative.forEach((c, i) => {
    for (let j = 0; j < per; j++) both[(cout + i) * per + j] = -weight[c * per + j]!;
    bothBias[cout + i] = -bias[c]!;
  });
  const pooled = g.maxPool(
    g.conv(
      x,
      { weight: { dims: [channels, cin, k, k], data: both }, bias: { dims: [channels], data: bothBias } },
      conv,
    ),
    pool,
    `${conv}.pool`,
  );
  // Channel c holds max(x_c); channel cout+i holds −min(x_c) for the i-th negative-slope channel c, whose
  // prelu is relu(min) + (−a)·relu(−min) = relu(−t) + (−a)·relu(t) with t = −min: the two relu terms swap.
  const onPositive = new Float32Array(channels);
  const onNegative = new Float32Array(channels);
  for (let c = 0; c < cout; c++) {
    onPositive[c] = 1;
    onNegative[c] = -slope[c]!;
  }
  negative.forEach((c, i) => {
    onPositive[cout + i] = -slope[c]!;
    onNegative[cout + i] = 1;
  });
  const positive = g.relu(pooled);
  const negated = g.relu(g.mulChannels(pooled, new Float32Array(channels).fill(-1), `${prelu}.negate`));
  const activated = g.add(
    g.mulChannels(positive, onPositive, `${prelu}.positive`),
    g.mulChannels(negated, onNegative, `${prelu}.negative`),
  );
  const pick = (source: (c: number) => number, name: string) => {
    const m = new Float32Array(cout * channels);
    for (let c = 0; c < cout; c++) m[c * channels + source(c)] = 1;
    return g.conv(activated, { weight: { dims: [cout, channels, 1, 1], data: m } }, name);
  };
  const ofMax = pick((c) => c, `${prelu}.max`);
  const ofMin = pick((c) => (negative.includes(c) ? cout + negative.indexOf(c) : c), `${prelu}.min`);
  return g.node('Max', [ofMax, ofMin], {}, { name: `${prelu}.pooled` });
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
 * facenet-pytorch flattens the last feature map `[N, C, H, W]` as `x.permute(0, 3, 2, 1).view(N, -1)` (a
 * Caffe legacy: W, H, C order) before the first dense layer, whose weights are laid out for that order. Here
 * the map is flattened as it is (C, H, W order) and the dense layer's weight columns are permuted to match:
 * the same products, without a Transpose of every candidate's feature map (onnxruntime also had to convert
 * it out of the blocked layout first).
 */
function flattenedDense(
  g: GraphBuilder,
  w: StateDictReader,
  x: string,
  name: string,
  map: MtcnnFlatten,
  cout: number,
): string {
  const { channels, height, width } = map;
  const cin = channels * height * width;
  const weight = w.takeData(`${name}.weight`, [cout, cin]);
  const permuted = new Float32Array(weight.length);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < height; y++) {
        for (let xx = 0; xx < width; xx++) {
          const caffe = (xx * height + y) * channels + c;
          const plain = (c * height + y) * width + xx;
          permuted[o * cin + plain] = weight[o * cin + caffe]!;
        }
      }
    }
  }
  return g.gemm(
    g.flatten(x, 1),
    { weight: { dims: [cout, cin], data: permuted }, bias: w.take(`${name}.bias`, [cout]) },
    name,
  );
}

const poolOptions = (pool: MtcnnMaxPool): MaxPoolOptions => ({
  kernel: [pool.kernel, pool.kernel],
  strides: [pool.stride, pool.stride],
  ceilMode: true,
});

/**
 * P-Net's face/background softmax over two channels of a map is the sigmoid of their difference:
 * onnxruntime's channel-axis Softmax transposes the whole map twice (a sixth of P-Net's time on a large
 * pyramid level); a 1×1 conv computing l1 − l0 and l0 − l1, with the sigmoid fused into it, gives the same
 * probabilities within float32 rounding.
 */
function softmaxPairOnMap(g: GraphBuilder, w: StateDictReader, x: string, head: MtcnnHead): string {
  const { name, in: cin } = head;
  if (head.out !== 2)
    throw new GraphBuildError(`MTCNN graph: softmax head ${name} on a map must have 2 channels`);
  const logit = w.takeData(`${name}.weight`, [2, cin, 1, 1]);
  const logitBias = w.takeData(`${name}.bias`, [2]);
  const difference = new Float32Array(2 * cin);
  for (let i = 0; i < cin; i++) {
    difference[i] = logit[i]! - logit[cin + i]!;
    difference[cin + i] = logit[cin + i]! - logit[i]!;
  }
  return g.node(
    'Sigmoid',
    [
      g.conv(
        x,
        {
          weight: { dims: [2, cin, 1, 1], data: difference },
          bias: {
            dims: [2],
            data: Float32Array.of(logitBias[0]! - logitBias[1]!, logitBias[1]! - logitBias[0]!),
          },
        },
        name,
      ),
    ],
    {},
    { output: head.output },
  );
}

/** One output layer on the trunk's last value, producing the graph output named `head.output`. */
function outputHead(g: GraphBuilder, w: StateDictReader, x: string, head: MtcnnHead): string {
  const { name, in: cin, out: cout, output } = head;
  if (head.kind === 'conv') {
    if (head.activation === 'softmax') return softmaxPairOnMap(g, w, x, head);
    return g.conv(
      x,
      { weight: w.take(`${name}.weight`, [cout, cin, 1, 1]), bias: w.take(`${name}.bias`, [cout]), output },
      name,
    );
  }
  if (head.activation === 'softmax') return g.softmax(linear(g, w, x, name, cin, cout), 1, output);
  return linear(g, w, x, name, cin, cout, output);
}

/** Lowers one network of the plan to ONNX bytes (see the layout notes above). */
function buildNetwork(
  architecture: MtcnnNetworkArchitecture,
  stateDict: StateDict,
  options: BuildGraphOptions | undefined,
): Uint8Array {
  const { g, w } = start(architecture.name, stateDict, options);
  const { channels, size } = architecture.input;
  let f = { value: g.input('input', ['N', channels, size ?? 'H', size ?? 'W']), channels };
  let flatten: MtcnnFlatten | undefined;
  const { layers } = architecture;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    const next = layers[i + 1];
    if (layer.kind === 'conv' && i === 0 && size === undefined && next?.kind === 'maxpool') {
      f = { value: convPreluPoolFirst(g, w, f.value, layer, poolOptions(next)), channels: layer.out };
      i++;
    } else if (layer.kind === 'conv') {
      f = convPrelu(g, w, f, layer);
    } else if (layer.kind === 'maxpool') {
      f = { ...f, value: g.maxPool(f.value, poolOptions(layer), layer.name) };
    } else if (layer.kind === 'flatten') {
      // Folded into the next dense layer's weights (see flattenedDense).
      flatten = layer;
    } else {
      if (!flatten) throw new GraphBuildError(`MTCNN graph: dense layer ${layer.name} must follow a flatten`);
      const y = flattenedDense(g, w, f.value, layer.name, flatten, layer.out);
      f = {
        value: g.prelu(y, w.take(`${layer.prelu}.weight`, [layer.out]), 2, layer.prelu),
        channels: layer.out,
      };
      flatten = undefined;
    }
  }
  const values = new Map<MtcnnOutputName, string>();
  for (const head of architecture.heads) values.set(head.output, outputHead(g, w, f.value, head));
  w.assertAllUsed();
  for (const name of architecture.outputs) {
    const head = architecture.heads.find((h) => h.output === name)!;
    g.output(values.get(name)!, name, head.kind === 'conv' ? ['N', head.out, 'h', 'w'] : ['N', head.out]);
  }
  return g.toBytes();
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
  return buildNetwork(MTCNN_PNET, stateDict, options);
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
  return buildNetwork(MTCNN_RNET, stateDict, options);
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
  return buildNetwork(MTCNN_ONET, stateDict, options);
}
