/**
 * facenet-pytorch's MTCNN networks (P-Net, R-Net, O-Net) as TensorFlow.js ops, weights straight from the
 * upstream state dicts. Only the networks live here: the cascade (pyramid, NMS, crops, landmarks) is the
 * framework's `MtcnnDetector`, shared with every provider. Layer order, kernel sizes, `ceil_mode` pooling
 * and the channel-last flatten follow facenet-pytorch's `models/mtcnn.py`.
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
import * as tf from '@tensorflow/tfjs-core';
import type { TfjsBackendName } from './backend.js';
import {
  type ConvWeights,
  convPrelu,
  type DenseWeights,
  densePrelu,
  maxPoolCeil,
  runModel,
  StateDictReader,
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

interface PNetWeights {
  conv1: ConvWeights;
  conv2: ConvWeights;
  conv3: ConvWeights;
  /** conv4_1 (face logits, 2 channels) and conv4_2 (box offsets, 4) as one 1×1 conv with 6 outputs. */
  head: ConvWeights;
}

interface RNetWeights {
  conv1: ConvWeights;
  conv2: ConvWeights;
  conv3: ConvWeights;
  dense4: DenseWeights;
  /** dense5_1 (2) and dense5_2 (4) as one 6-output layer. */
  head: DenseWeights;
}

interface ONetWeights {
  conv1: ConvWeights;
  conv2: ConvWeights;
  conv3: ConvWeights;
  conv4: ConvWeights;
  dense5: DenseWeights;
  /** dense6_1 (2), dense6_2 (4) and dense6_3 (10) as one 16-output layer. */
  head: DenseWeights;
}

function reader(stateDict: StateDict, model: string, source: string | undefined): StateDictReader {
  return new StateDictReader(stateDict, source === undefined ? { model } : { model, source });
}

/** `convN.weight/bias` plus `preluN.weight`, when `prelu` is given. */
function conv(
  set: WeightSet,
  r: StateDictReader,
  name: string,
  prelu: string | undefined,
  cin: number,
  cout: number,
  k: number,
): ConvWeights {
  const shape = [cout, cin, k, k] as const;
  return {
    filter: set.filter(r.takeData(`${name}.weight`, shape), shape),
    bias: set.vector(r.takeData(`${name}.bias`, [cout])),
    ...(prelu ? { prelu: set.vector(r.takeData(`${prelu}.weight`, [cout])) } : {}),
  };
}

function dense(
  set: WeightSet,
  r: StateDictReader,
  name: string,
  prelu: string,
  cin: number,
  cout: number,
): DenseWeights {
  return {
    weight: set.matrix(r.takeData(`${name}.weight`, [cout, cin]), [cout, cin]),
    bias: set.vector(r.takeData(`${name}.bias`, [cout])),
    prelu: set.vector(r.takeData(`${prelu}.weight`, [cout])),
  };
}

/** Several output layers over the same input, stacked into one (PyTorch `[out, in]` rows concatenated). */
function stackedHead(
  r: StateDictReader,
  names: readonly string[],
  outs: readonly number[],
  perRow: readonly number[],
): { weight: Float32Array; bias: Float32Array; out: number } {
  const out = outs.reduce((a, b) => a + b, 0);
  const rowSize = perRow.reduce((a, b) => a * b, 1);
  const weight = new Float32Array(out * rowSize);
  const bias = new Float32Array(out);
  let row = 0;
  names.forEach((name, i) => {
    const n = outs[i]!;
    weight.set(r.takeData(`${name}.weight`, [n, ...perRow]), row * rowSize);
    bias.set(r.takeData(`${name}.bias`, [n]), row);
    row += n;
  });
  return { weight, bias, out };
}

function pnetWeights(set: WeightSet, sd: StateDict, source?: string): PNetWeights {
  const r = reader(sd, 'PNet', source);
  const head = stackedHead(r, ['conv4_1', 'conv4_2'], [2, 4], [32, 1, 1]);
  const weights = {
    conv1: conv(set, r, 'conv1', 'prelu1', 3, 10, 3),
    conv2: conv(set, r, 'conv2', 'prelu2', 10, 16, 3),
    conv3: conv(set, r, 'conv3', 'prelu3', 16, 32, 3),
    head: { filter: set.filter(head.weight, [head.out, 32, 1, 1]), bias: set.vector(head.bias) },
  };
  r.assertAllUsed();
  return weights;
}

function rnetWeights(set: WeightSet, sd: StateDict, source?: string): RNetWeights {
  const r = reader(sd, 'RNet', source);
  const weights = {
    conv1: conv(set, r, 'conv1', 'prelu1', 3, 28, 3),
    conv2: conv(set, r, 'conv2', 'prelu2', 28, 48, 3),
    conv3: conv(set, r, 'conv3', 'prelu3', 48, 64, 2),
    dense4: dense(set, r, 'dense4', 'prelu4', 576, 128),
  };
  const head = stackedHead(r, ['dense5_1', 'dense5_2'], [2, 4], [128]);
  r.assertAllUsed();
  return {
    ...weights,
    head: { weight: set.matrix(head.weight, [head.out, 128]), bias: set.vector(head.bias) },
  };
}

function onetWeights(set: WeightSet, sd: StateDict, source?: string): ONetWeights {
  const r = reader(sd, 'ONet', source);
  const weights = {
    conv1: conv(set, r, 'conv1', 'prelu1', 3, 32, 3),
    conv2: conv(set, r, 'conv2', 'prelu2', 32, 64, 3),
    conv3: conv(set, r, 'conv3', 'prelu3', 64, 64, 3),
    conv4: conv(set, r, 'conv4', 'prelu4', 64, 128, 2),
    dense5: dense(set, r, 'dense5', 'prelu5', 1152, 256),
  };
  const head = stackedHead(r, ['dense6_1', 'dense6_2', 'dense6_3'], [2, 4, 10], [256]);
  r.assertAllUsed();
  return {
    ...weights,
    head: { weight: set.matrix(head.weight, [head.out, 256]), bias: set.vector(head.bias) },
  };
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

/** The three MTCNN networks on a TensorFlow.js backend. */
export class TfjsMtcnnNetworks implements MtcnnNetworks {
  readonly backend: TfjsBackendName;
  #set: WeightSet | undefined;
  readonly #pnet: PNetWeights;
  readonly #rnet: RNetWeights;
  readonly #onet: ONetWeights;

  private constructor(set: WeightSet, pnet: PNetWeights, rnet: RNetWeights, onet: ONetWeights) {
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
    const set = await WeightSet.on(backend);
    try {
      return new TfjsMtcnnNetworks(
        set,
        pnetWeights(set, stateDicts.pnet, sources.pnet),
        rnetWeights(set, stateDicts.rnet, sources.rnet),
        onetWeights(set, stateDicts.onet, sources.onet),
      );
    } catch (error) {
      set.dispose();
      throw error;
    }
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

  #assertLive(): void {
    if (!this.#set) throw new DisposedError(`tfjs mtcnn networks (${this.backend})`);
  }

  async pnet(input: Float32Array, count: number, height: number, width: number): Promise<PNetOutput> {
    this.#assertLive();
    const w = this.#pnet;
    let mapH = 0;
    let mapW = 0;
    const [reg, prob] = await runModel(this.backend, () => {
      let x = convPrelu(nhwc(input, count, height, width), w.conv1);
      x = maxPoolCeil(x, 2, 2);
      x = convPrelu(convPrelu(x, w.conv2), w.conv3);
      const head = convPrelu(x, w.head);
      [, mapH, mapW] = head.shape;
      const [logits, offsets] = tf.split(head, [2, 4], 3);
      // Softmax over channels, as facenet-pytorch's Softmax(dim=1); outputs back to NCHW for the cascade.
      return [tf.transpose(offsets!, [0, 3, 1, 2]), tf.transpose(tf.softmax(logits!), [0, 3, 1, 2])];
    });
    return { reg: reg!, prob: prob!, height: mapH, width: mapW };
  }

  async rnet(input: Float32Array, count: number): Promise<RNetOutput> {
    this.#assertLive();
    const w = this.#rnet;
    const [reg, prob] = await runModel(this.backend, () => {
      let x = maxPoolCeil(convPrelu(nhwc(input, count, 24, 24), w.conv1), 3, 2);
      x = maxPoolCeil(convPrelu(x, w.conv2), 3, 2);
      x = convPrelu(x, w.conv3);
      const head = densePrelu(densePrelu(flattenLikeCaffe(x), w.dense4), w.head);
      const [logits, offsets] = tf.split(head, [2, 4], 1);
      return [offsets!, tf.softmax(logits!)];
    });
    return { reg: reg!, prob: prob! };
  }

  async onet(input: Float32Array, count: number): Promise<ONetOutput> {
    this.#assertLive();
    const w = this.#onet;
    const [reg, landmarks, prob] = await runModel(this.backend, () => {
      let x = maxPoolCeil(convPrelu(nhwc(input, count, 48, 48), w.conv1), 3, 2);
      x = maxPoolCeil(convPrelu(x, w.conv2), 3, 2);
      x = maxPoolCeil(convPrelu(x, w.conv3), 2, 2);
      x = convPrelu(x, w.conv4);
      const head = densePrelu(densePrelu(flattenLikeCaffe(x), w.dense5), w.head);
      const [logits, offsets, points] = tf.split(head, [2, 4, 10], 1);
      return [offsets!, points!, tf.softmax(logits!)];
    });
    return { reg: reg!, landmarks: landmarks!, prob: prob! };
  }

  async dispose(): Promise<void> {
    this.#set?.dispose();
    this.#set = undefined;
  }
}
