import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CheckpointError, InvalidOptionsError, readCheckpointFile, type StateDict } from '@facerec/framework';
import {
  describeWithSharedData,
  MTCNN_STATE_DICT_SHAPES,
  sharedPath,
  thrownBy,
  withoutTensor,
  withTensor,
} from '@facerec/framework/testing';
import { Tensor } from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  conv2d,
  flatten,
  get,
  linear,
  makeStateDict,
  maxAbsDiff,
  maxPool2d,
  type Nd,
  permute,
  prelu,
  randomNd,
  seededRandom,
  softmaxDim1,
} from './__fixtures__/naive.js';
import { buildONet, buildPNet, buildRNet } from './mtcnn.js';
import { decodeModel } from './onnx-schema.js';
import { createSession } from './session.js';

const { pnet: PNET_SHAPES, rnet: RNET_SHAPES, onet: ONET_SHAPES } = MTCNN_STATE_DICT_SHAPES;

/** Random weights scaled like a trained net (variance ~1/fan_in), so activations stay O(1). */
function syntheticStateDict(shapes: Readonly<Record<string, readonly number[]>>, seed: number): StateDict {
  const rand = seededRandom(seed);
  return makeStateDict(shapes, (key, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (key.startsWith('prelu')) return randomNd(shape, rand, 0, 0.5).data as Float32Array;
    if (shape.length === 1) return randomNd(shape, rand, -0.1, 0.1).data as Float32Array;
    const bound = Math.sqrt(3 / (n / shape[0]!));
    return randomNd(shape, rand, -bound, bound).data as Float32Array;
  });
}

const convP = (sd: StateDict, x: Nd, i: number): Nd =>
  prelu(conv2d(x, get(sd, `conv${i}.weight`), get(sd, `conv${i}.bias`)), get(sd, `prelu${i}.weight`));
const dense = (sd: StateDict, x: Nd, name: string): Nd =>
  linear(x, get(sd, `${name}.weight`), get(sd, `${name}.bias`));

function pnetReference(sd: StateDict, x: Nd): Record<string, Nd> {
  let y = maxPool2d(convP(sd, x, 1), 2, 2, true);
  y = convP(sd, convP(sd, y, 2), 3);
  return {
    prob: softmaxDim1(conv2d(y, get(sd, 'conv4_1.weight'), get(sd, 'conv4_1.bias'))),
    reg: conv2d(y, get(sd, 'conv4_2.weight'), get(sd, 'conv4_2.bias')),
  };
}

function rnetReference(sd: StateDict, x: Nd): Record<string, Nd> {
  let y = maxPool2d(convP(sd, x, 1), 3, 2, true);
  y = maxPool2d(convP(sd, y, 2), 3, 2, true);
  y = flatten(permute(convP(sd, y, 3), [0, 3, 2, 1]));
  y = prelu(dense(sd, y, 'dense4'), get(sd, 'prelu4.weight'));
  return { prob: softmaxDim1(dense(sd, y, 'dense5_1')), reg: dense(sd, y, 'dense5_2') };
}

function onetReference(sd: StateDict, x: Nd): Record<string, Nd> {
  let y = maxPool2d(convP(sd, x, 1), 3, 2, true);
  y = maxPool2d(convP(sd, y, 2), 3, 2, true);
  y = maxPool2d(convP(sd, y, 3), 2, 2, true);
  y = flatten(permute(convP(sd, y, 4), [0, 3, 2, 1]));
  y = prelu(dense(sd, y, 'dense5'), get(sd, 'prelu5.weight'));
  return {
    prob: softmaxDim1(dense(sd, y, 'dense6_1')),
    reg: dense(sd, y, 'dense6_2'),
    landmarks: dense(sd, y, 'dense6_3'),
  };
}

interface NetCase {
  readonly name: 'pnet' | 'rnet' | 'onet';
  readonly build: typeof buildPNet;
  readonly reference: (sd: StateDict, x: Nd) => Record<string, Nd>;
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  readonly input: readonly number[];
  readonly outputs: Readonly<Record<string, readonly number[]>>;
}

// P-Net on 37×50: conv1 → 35×48, ceil pool → 18×24 (a clipped last row window), then −4 → 14×20,
// i.e. h = ⌈(H − 2) / 2⌉ − 4.
const CASES: readonly NetCase[] = [
  {
    name: 'pnet',
    build: buildPNet,
    reference: pnetReference,
    shapes: PNET_SHAPES,
    input: [2, 3, 37, 50],
    outputs: { reg: [2, 4, 14, 20], prob: [2, 2, 14, 20] },
  },
  {
    name: 'rnet',
    build: buildRNet,
    reference: rnetReference,
    shapes: RNET_SHAPES,
    input: [3, 3, 24, 24],
    outputs: { reg: [3, 4], prob: [3, 2] },
  },
  {
    name: 'onet',
    build: buildONet,
    reference: onetReference,
    shapes: ONET_SHAPES,
    input: [2, 3, 48, 48],
    outputs: { reg: [2, 4], landmarks: [2, 10], prob: [2, 2] },
  },
];

/** Builds, runs and compares one network; returns the largest difference from the reference. */
async function checkAgainstReference(c: NetCase, sd: StateDict, seed: number): Promise<number> {
  const input = randomNd(c.input, seededRandom(seed));
  const session = await createSession(c.build(sd), { intraOpNumThreads: 1 });
  const result = await session.run({
    input: new Tensor('float32', Float32Array.from(input.data), [...c.input]),
  });
  await session.release();
  const expected = c.reference(sd, input);
  expect(Object.keys(result).sort()).toEqual(Object.keys(c.outputs).sort());
  let worst = 0;
  for (const [name, shape] of Object.entries(c.outputs)) {
    const out = result[name]!;
    expect(out.dims).toEqual(shape);
    worst = Math.max(worst, maxAbsDiff(out.data as Float32Array, out.dims, expected[name]!));
  }
  const prob = result.prob!.data as Float32Array;
  // Softmax over dim 1: channel pairs sum to one at every position.
  const inner = c.outputs.prob!.slice(2).reduce((a, b) => a * b, 1);
  for (let b = 0; b < c.input[0]!; b++)
    for (let p = 0; p < inner; p++) {
      expect(prob[b * 2 * inner + p]! + prob[(b * 2 + 1) * inner + p]!).toBeCloseTo(1, 6);
    }
  return worst;
}

describe('MTCNN graphs with synthetic weights', () => {
  for (const c of CASES) {
    it(`${c.name} matches a direct-loop forward pass`, async () => {
      const worst = await checkAgainstReference(c, syntheticStateDict(c.shapes, 7), 11);
      expect(worst).toBeLessThan(1e-4);
    });
  }

  it('P-Net accepts any input size (dynamic H, W)', async () => {
    const session = await createSession(buildPNet(syntheticStateDict(PNET_SHAPES, 1)), {
      intraOpNumThreads: 1,
    });
    for (const [h, w] of [
      [12, 12],
      [13, 40],
      [100, 61],
    ] as const) {
      const result = await session.run({
        input: new Tensor('float32', new Float32Array(3 * h * w), [1, 3, h, w]),
      });
      expect(result.prob!.dims).toEqual([1, 2, Math.ceil((h - 2) / 2) - 4, Math.ceil((w - 2) / 2) - 4]);
    }
    await session.release();
  });

  it('names a missing key, a mis-shaped key and an unexpected key in CheckpointError', () => {
    const sd = syntheticStateDict(RNET_SHAPES, 3);
    expect(() => buildRNet(withoutTensor(sd, 'dense4.weight'), { source: 'rnet.pt' })).toThrowError(
      /rnet\.pt: RNet: missing weight "dense4\.weight" \(expected shape \[128, 576\]\)/,
    );

    const error = thrownBy(() => buildRNet(withTensor(sd, 'conv3.weight', [64, 48, 3, 3])));
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe(
      'RNet: weight "conv3.weight" has shape [64, 48, 3, 3], expected [64, 48, 2, 2]',
    );

    expect(() => buildRNet(withTensor(sd, 'conv9.weight', [1]))).toThrowError(
      /unexpected key "conv9\.weight"/,
    );

    // P-Net weights handed to the R-Net builder fail on the first layer, naming it.
    expect(() => buildRNet(syntheticStateDict(PNET_SHAPES, 1))).toThrowError(
      /"conv1\.weight" has shape \[10, 3, 3, 3\]/,
    );
  });

  it('rejects unknown options and writes provenance metadata', () => {
    const sd = syntheticStateDict(ONET_SHAPES, 4);
    expect(() => buildONet(sd, { sha256: 'x' } as never)).toThrow(InvalidOptionsError);
    const model = decodeModel(buildONet(sd, { metadata: { weights_sha256: 'f00' } }));
    expect(model.metadataProps).toEqual([
      { key: 'weights_sha256', value: 'f00' },
      { key: 'facerec_architecture', value: 'facenet-pytorch/mtcnn/onet' },
    ]);
    expect(model.graph.output.map((o) => o.name)).toEqual(['reg', 'landmarks', 'prob']);
  });
});

describeWithSharedData(
  'MTCNN graphs with the upstream facenet-pytorch weights',
  ['models/upstream/pnet.pt', 'models/upstream/rnet.pt', 'models/upstream/onet.pt'],
  () => {
    const weights = new Map<string, StateDict>();
    beforeAll(async () => {
      for (const c of CASES)
        weights.set(c.name, await readCheckpointFile(sharedPath('models', 'upstream', `${c.name}.pt`)));
    });

    for (const c of CASES) {
      it(`${c.name} matches a direct-loop forward pass within 1e-4`, async () => {
        const sd = weights.get(c.name)!;
        expect([...sd.keys()].sort()).toEqual(Object.keys(c.shapes).sort());
        const worst = await checkAgainstReference(c, sd, 23);
        console.log(`${c.name} (upstream weights): max |onnx − reference| = ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-4);
      });
    }

    it("is laid out for onnxruntime's blocked-channel kernels (no PRelu, Softmax or Transpose on feature maps)", () => {
      const ops = (bytes: Uint8Array) => decodeModel(bytes).graph.node.map((n) => n.opType);
      const count = (list: string[], op: string) => list.filter((o) => o === op).length;
      const pnet = ops(buildPNet(weights.get('pnet')!));
      const rnet = ops(buildRNet(weights.get('rnet')!));
      const onet = ops(buildONet(weights.get('onet')!));
      for (const list of [pnet, rnet, onet]) expect(count(list, 'Transpose')).toBe(0);
      expect(count(pnet, 'PRelu') + count(pnet, 'Softmax')).toBe(0);
      // Only the PReLU after the first dense layer remains, on [N, C].
      expect(count(rnet, 'PRelu')).toBe(1);
      expect(count(onet, 'PRelu')).toBe(1);
      const conv1 = decodeModel(buildRNet(weights.get('rnet')!)).graph.initializer.find(
        (t) => t.name === 'conv1.weight',
      );
      expect(conv1?.dims).toEqual([32, 3, 3, 3]); // 28 channels padded to 32
    });

    it('records the weights sha256 given as provenance', () => {
      const file = sharedPath('models', 'upstream', 'pnet.pt');
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      const model = decodeModel(
        buildPNet(weights.get('pnet')!, { metadata: { weights_sha256: sha }, source: file }),
      );
      expect(model.metadataProps[0]).toEqual({ key: 'weights_sha256', value: sha });
      expect(sha).toBe('a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f');
    });
  },
);
