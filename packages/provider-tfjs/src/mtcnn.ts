/**
 * facenet-pytorch's MTCNN networks (P-Net, R-Net, O-Net) as TensorFlow.js ops, weights straight from the
 * upstream state dicts. Only the networks live here: the cascade (pyramid, NMS, crops, landmarks) is the
 * framework's `MtcnnDetector`, shared with every provider. The layers, kernel sizes, `ceil_mode` pooling and
 * the channel-last flatten are the framework's `MTCNN_ARCHITECTURES` (facenet-pytorch's `models/mtcnn.py`),
 * from which the onnx provider builds its graphs too.
 */

import { readFile } from 'node:fs/promises';
import {
  DisposedError,
  type ModelStore,
  type MtcnnNetworks,
  type ONetOutput,
  type PNetOutput,
  type RNetOutput,
  readCheckpoint,
  type StateDict,
} from '@facerec/framework';
import {
  MTCNN_ARCHITECTURES,
  MTCNN_ONET,
  MTCNN_RNET,
  type MtcnnHead,
  type MtcnnLayer,
  type MtcnnNetworkArchitecture,
  type MtcnnOutputName,
  StateDictReader,
} from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import type { TfjsBackendName } from './backend.js';
import {
  type ConvWeights,
  convPrelu,
  type DenseWeights,
  densePrelu,
  maxPoolCeil,
  runModel,
  WeightSet,
} from './tensors.js';

/** The manifest entries of the three MTCNN networks. */
export const MTCNN_WEIGHTS = Object.freeze({
  pnet: 'mtcnn-pnet',
  rnet: 'mtcnn-rnet',
  onet: 'mtcnn-onet',
} as const);

/** State dicts of the three networks (`pnet.pt`, `rnet.pt`, `onet.pt`). */
export interface MtcnnStateDicts {
  readonly pnet: StateDict;
  readonly rnet: StateDict;
  readonly onet: StateDict;
}

function reader(stateDict: StateDict, model: string, source: string | undefined): StateDictReader {
  return new StateDictReader(stateDict, source === undefined ? { model } : { model, source });
}

/** Several output layers over the same input, stacked into one (PyTorch `[out, in]` rows concatenated). */
function stackedHeads(
  r: StateDictReader,
  heads: readonly MtcnnHead[],
  perRow: readonly number[],
): { weight: Float32Array; bias: Float32Array; out: number } {
  const out = heads.reduce((sum, h) => sum + h.out, 0);
  const rowSize = perRow.reduce((a, b) => a * b, 1);
  const weight = new Float32Array(out * rowSize);
  const bias = new Float32Array(out);
  let row = 0;
  for (const { name, out: n } of heads) {
    weight.set(r.takeData(`${name}.weight`, [n, ...perRow]), row * rowSize);
    bias.set(r.takeData(`${name}.bias`, [n]), row);
    row += n;
  }
  return { weight, bias, out };
}

/** NCHW float32 from the cascade → NHWC, the layout every tfjs backend convolves. */
const nhwc = (data: Float32Array, n: number, h: number, w: number): tf.Tensor4D =>
  tf.transpose(tf.tensor4d(data, [n, 3, h, w], 'float32'), [0, 2, 3, 1]);

/**
 * facenet-pytorch flattens `[N, C, H, W]` as `x.permute(0, 3, 2, 1).view(N, -1)` (Caffe's W, H, C order)
 * and the dense weights expect that order; from NHWC that is a swap of H and W.
 */
const flattenLikeCaffe = (x: tf.Tensor4D): tf.Tensor2D =>
  tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [x.shape[0], -1]);

/** A step of the trunk: NHWC feature maps before the flatten, `[N, C]` vectors after it. */
type Step = (x: tf.Tensor) => tf.Tensor;

/** One layer of the plan with its weights taken from `r` into `set`. */
function trunkStep(set: WeightSet, r: StateDictReader, layer: MtcnnLayer): Step {
  switch (layer.kind) {
    case 'conv': {
      const shape = [layer.out, layer.in, layer.kernel, layer.kernel] as const;
      const w: ConvWeights = {
        filter: set.filter(r.takeData(`${layer.name}.weight`, shape), shape),
        bias: set.vector(r.takeData(`${layer.name}.bias`, [layer.out])),
        prelu: set.vector(r.takeData(`${layer.prelu}.weight`, [layer.out])),
      };
      return (x) => convPrelu(x as tf.Tensor4D, w);
    }
    case 'maxpool':
      return (x) => maxPoolCeil(x as tf.Tensor4D, layer.kernel, layer.stride);
    case 'flatten':
      return (x) => flattenLikeCaffe(x as tf.Tensor4D);
    case 'dense': {
      const w: DenseWeights = {
        weight: set.matrix(r.takeData(`${layer.name}.weight`, [layer.out, layer.in]), [layer.out, layer.in]),
        bias: set.vector(r.takeData(`${layer.name}.bias`, [layer.out])),
        prelu: set.vector(r.takeData(`${layer.prelu}.weight`, [layer.out])),
      };
      return (x) => densePrelu(x as tf.Tensor2D, w);
    }
  }
}

/** A network built from its plan: NHWC input in; outputs (maps as NCHW) in `architecture.outputs` order. */
interface Network {
  readonly architecture: MtcnnNetworkArchitecture;
  readonly forward: (input: tf.Tensor4D) => tf.Tensor[];
}

/**
 * Builds one network from its plan. The heads all read the same feature, so they run as one stacked layer
 * (one convolution or matrix product, split afterwards), which tfjs dispatches once instead of per head.
 */
function buildNetwork(
  set: WeightSet,
  architecture: MtcnnNetworkArchitecture,
  stateDict: StateDict,
  source: string | undefined,
): Network {
  const r = reader(stateDict, architecture.name, source);
  const trunk = architecture.layers.map((layer) => trunkStep(set, r, layer));
  const { heads } = architecture;
  const onMap = heads[0]!.kind === 'conv';
  const features = heads[0]!.in;
  const stacked = stackedHeads(r, heads, onMap ? [features, 1, 1] : [features]);
  r.assertAllUsed();
  const bias = set.vector(stacked.bias);
  let head: Step;
  if (onMap) {
    const filter = set.filter(stacked.weight, [stacked.out, features, 1, 1]);
    head = (x) => convPrelu(x as tf.Tensor4D, { filter, bias });
  } else {
    const weight = set.matrix(stacked.weight, [stacked.out, features]);
    head = (x) => densePrelu(x as tf.Tensor2D, { weight, bias });
  }
  return {
    architecture,
    forward: (input) => {
      const out = head(trunk.reduce((x, step) => step(x), input as tf.Tensor));
      const parts = tf.split(
        out,
        heads.map((h) => h.out),
        out.rank - 1,
      );
      const byName = new Map(
        heads.map((h, i) => {
          let t = parts[i]!;
          // Softmax over channels, as facenet-pytorch's Softmax(dim=1); maps back to NCHW for the cascade.
          if (h.activation === 'softmax') t = tf.softmax(t);
          if (t.rank === 4) t = tf.transpose(t, [0, 3, 1, 2]);
          return [h.output, t] as const;
        }),
      );
      return architecture.outputs.map((name) => byName.get(name)!);
    },
  };
}

/**
 * P-Net levels above this many pixels run in horizontal strips (the cascade's `pnetPixelLimit`; the strips are
 * joined into exactly the maps of one run). The wasm backend's memory is 32-bit (4 GiB at most) and never
 * shrinks: a whole first level of a 50-megapixel frame at full size (`maxPixels: 0`) overflowed it, and the
 * backend then failed every later call in the process ("Aborted()"). The first level of a Full HD frame
 * (1152×648) fits in one strip, so ordinary frames run as before.
 */
const PNET_STRIP_PIXELS = 2 * 1024 * 1024;

/** The three MTCNN networks on a TensorFlow.js backend. */
export class TfjsMtcnnNetworks implements MtcnnNetworks {
  readonly backend: TfjsBackendName;
  #set: WeightSet | undefined;
  readonly #pnet: Network;
  readonly #rnet: Network;
  readonly #onet: Network;

  private constructor(set: WeightSet, pnet: Network, rnet: Network, onet: Network) {
    this.backend = set.backend;
    this.#set = set;
    this.#pnet = pnet;
    this.#rnet = rnet;
    this.#onet = onet;
  }

  /**
   * Builds the networks from their state dicts on `backend`.
   *
   * @throws CheckpointError when a state dict lacks a key, has a wrong shape, or holds keys the network
   *   does not use.
   */
  static async fromStateDicts(
    stateDicts: MtcnnStateDicts,
    backend: TfjsBackendName,
    sources: Partial<Record<keyof MtcnnStateDicts, string>> = {},
  ): Promise<TfjsMtcnnNetworks> {
    return WeightSet.build(backend, (set) => {
      const build = (key: keyof MtcnnStateDicts) =>
        buildNetwork(set, MTCNN_ARCHITECTURES[key], stateDicts[key], sources[key]);
      return new TfjsMtcnnNetworks(set, build('pnet'), build('rnet'), build('onet'));
    });
  }

  /** Pulls `pnet.pt`, `rnet.pt` and `onet.pt` through the model store and builds the networks. */
  static async load(store: ModelStore, backend: TfjsBackendName): Promise<TfjsMtcnnNetworks> {
    const pulled = await store.pull([MTCNN_WEIGHTS.pnet, MTCNN_WEIGHTS.rnet, MTCNN_WEIGHTS.onet]);
    const [pnet, rnet, onet] = await Promise.all(
      pulled.map(async (p) => readCheckpoint(await readFile(p.path), { source: p.path })),
    );
    return TfjsMtcnnNetworks.fromStateDicts({ pnet: pnet!, rnet: rnet!, onet: onet! }, backend, {
      pnet: pulled[0]!.path,
      rnet: pulled[1]!.path,
      onet: pulled[2]!.path,
    });
  }

  /** Runs `network` on `count` NCHW images; its outputs by name, and the shape of the first one. */
  async #run(
    network: Network,
    input: Float32Array,
    count: number,
    height: number,
    width: number,
  ): Promise<{ out: Partial<Record<MtcnnOutputName, Float32Array>>; shape: readonly number[] }> {
    if (!this.#set) throw new DisposedError(`tfjs mtcnn networks (${this.backend})`);
    let shape: readonly number[] = [];
    const values = await runModel(
      this.backend,
      () => {
        const outputs = network.forward(nhwc(input, count, height, width));
        shape = outputs[0]!.shape;
        return outputs;
      },
      () => {
        if (!this.#set) throw new DisposedError(`tfjs mtcnn networks (${this.backend})`);
      },
    );
    const names = network.architecture.outputs;
    return { out: Object.fromEntries(names.map((name, i) => [name, values[i]!])), shape };
  }

  async pnet(input: Float32Array, count: number, height: number, width: number): Promise<PNetOutput> {
    const { out, shape } = await this.#run(this.#pnet, input, count, height, width);
    return { reg: out.reg!, prob: out.prob!, height: shape[2]!, width: shape[3]! };
  }

  /** The cascade runs P-Net levels larger than this in strips (see PNET_STRIP_PIXELS). */
  pnetPixelLimit(): number {
    return PNET_STRIP_PIXELS;
  }

  async rnet(input: Float32Array, count: number): Promise<RNetOutput> {
    const size = MTCNN_RNET.input.size!;
    const { out } = await this.#run(this.#rnet, input, count, size, size);
    return { reg: out.reg!, prob: out.prob! };
  }

  async onet(input: Float32Array, count: number): Promise<ONetOutput> {
    const size = MTCNN_ONET.input.size!;
    const { out } = await this.#run(this.#onet, input, count, size, size);
    return { reg: out.reg!, landmarks: out.landmarks!, prob: out.prob! };
  }

  async dispose(): Promise<void> {
    this.#set?.dispose();
    this.#set = undefined;
  }
}
