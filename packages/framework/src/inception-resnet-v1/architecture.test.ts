import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isTrainingOnlyKey, StateDictReader } from '../checkpoint/reader.js';
import type { StateDict } from '../checkpoint/types.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import {
  INCEPTION_RESNET_V1_BLOCKS,
  INCEPTION_RESNET_V1_HEAD,
  INCEPTION_RESNET_V1_INPUT_SIZE,
  type InceptionResnetV1Branch,
  type InceptionResnetV1Layer,
} from './architecture.js';
import { foldedInceptionResnetV1Head, isUnusedInceptionResnetV1Key } from './checkpoint.js';
import { type InceptionResnetV1Ops, inceptionResnetV1Trunk } from './network.js';

interface Shape {
  readonly channels: number;
  readonly size: number;
}

/** Walks one layer, checking that it accepts the width it is given; returns what it produces. */
function walkLayer(x: Shape, layer: InceptionResnetV1Layer): Shape {
  if (layer.kind === 'maxpool') {
    return { channels: x.channels, size: Math.floor((x.size - layer.kernel) / layer.stride) + 1 };
  }
  expect(layer.in, layer.name).toBe(x.channels);
  const [kh, kw] = layer.kernel;
  const [ph, pw] = layer.padding;
  // Every conv here is square in, square out.
  expect(kh - 2 * ph, layer.name).toBe(kw - 2 * pw);
  return { channels: layer.out, size: Math.floor((x.size + 2 * ph - kh) / layer.stride) + 1 };
}

const walkBranches = (x: Shape, branches: readonly InceptionResnetV1Branch[]): Shape[] =>
  branches.map((b) => b.reduce(walkLayer, x));

/** The state-dict keys and shapes the plan reads, in plan order (facenet-pytorch's registration order). */
function planKeys(): [string, number[]][] {
  const keys: [string, number[]][] = [];
  const bn = (prefix: string, n: number) => {
    for (const k of ['weight', 'bias', 'running_mean', 'running_var']) keys.push([`${prefix}.${k}`, [n]]);
  };
  const layer = (l: InceptionResnetV1Layer) => {
    if (l.kind !== 'conv') return;
    keys.push([`${l.name}.conv.weight`, [l.out, l.in, ...l.kernel]]);
    bn(`${l.name}.bn`, l.out);
  };
  for (const block of INCEPTION_RESNET_V1_BLOCKS) {
    if (block.kind === 'conv' || block.kind === 'maxpool') layer(block);
    else {
      for (const branch of block.branches) branch.forEach(layer);
      if (block.kind === 'residual') {
        const { name, in: cin, out } = block.projection;
        keys.push([`${name}.weight`, [out, cin, 1, 1]], [`${name}.bias`, [out]]);
      }
    }
  }
  const head = INCEPTION_RESNET_V1_HEAD;
  keys.push([`${head.linear}.weight`, [head.embedding, head.features]]);
  bn(head.batchNorm, head.embedding);
  return keys;
}

describe('INCEPTION_RESNET_V1_BLOCKS', () => {
  it('chains widths and sizes from the 160×160 input to the head (…, 17, 8, 3 at 1792 channels)', () => {
    let x: Shape = { channels: 3, size: INCEPTION_RESNET_V1_INPUT_SIZE };
    const sizes: number[] = [];
    for (const block of INCEPTION_RESNET_V1_BLOCKS) {
      if (block.kind === 'conv' || block.kind === 'maxpool') x = walkLayer(x, block);
      else if (block.kind === 'mixed') {
        const outs = walkBranches(x, block.branches);
        for (const o of outs) expect(o.size, block.name).toBe(outs[0]!.size);
        x = { channels: outs.reduce((s, o) => s + o.channels, 0), size: outs[0]!.size };
      } else {
        const outs = walkBranches(x, block.branches);
        for (const o of outs) expect(o.size, block.name).toBe(x.size);
        expect(block.projection.in, block.name).toBe(outs.reduce((s, o) => s + o.channels, 0));
        expect(block.projection.out, block.name).toBe(x.channels);
        expect(block.projection.name).toBe(`${block.name}.conv2d`);
      }
      sizes.push(x.size);
    }
    expect(x).toEqual({ channels: INCEPTION_RESNET_V1_HEAD.features, size: 3 });
    expect([...new Set(sizes)]).toEqual([79, 77, 38, 36, 17, 8, 3]);
  });

  it('has facenet-pytorch’s repeats, scales and the final Block8 without ReLU', () => {
    const residuals = INCEPTION_RESNET_V1_BLOCKS.filter((b) => b.kind === 'residual');
    const summary = residuals.map((b) => `${b.name.split('.')[0]}:${b.scale}:${b.activation}`);
    expect(summary).toEqual([
      ...Array(5).fill('repeat_1:0.17:relu'),
      ...Array(10).fill('repeat_2:0.1:relu'),
      ...Array(5).fill('repeat_3:0.2:relu'),
      'block8:1:none',
    ]);
  });

  it('ignores batch-norm counters and the logits classifier, nothing else', () => {
    expect(isUnusedInceptionResnetV1Key('logits.weight')).toBe(true);
    expect(isUnusedInceptionResnetV1Key('repeat_1.0.branch0.bn.num_batches_tracked')).toBe(true);
    expect(isUnusedInceptionResnetV1Key('last_linear.weight')).toBe(false);
  });
});

describe('inceptionResnetV1Trunk', () => {
  it('reads every weight in plan order and hands each step its folded weights', () => {
    // Every weight 1: each batch norm folds to k = 1 / √(1 + eps) on the weights and β − μ·k = 1 − k on the bias.
    const keys = planKeys();
    const stateDict: StateDict = new Map(
      keys.map(([name, shape]) => [
        name,
        { name, dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1) },
      ]),
    );
    const read: string[] = [];
    class RecordingReader extends StateDictReader {
      override take(key: string, shape: readonly number[]) {
        read.push(key);
        return super.take(key, shape);
      }
    }
    const r = new RecordingReader(stateDict, { model: 'test', ignore: isUnusedInceptionResnetV1Key });
    const k = 1 / Math.sqrt(1.001);
    const steps: string[] = [];
    // A layer is the number of steps it is made of.
    const ops: InceptionResnetV1Ops<number> = {
      conv: (layer, { weight, bias }) => {
        expect(weight.dims).toEqual([layer.out, layer.in, ...layer.kernel]);
        expect([weight.data[0], bias.data[0], bias.data.length]).toEqual([
          Math.fround(k),
          Math.fround(1 - k),
          layer.out,
        ]);
        steps.push('conv');
        return 1;
      },
      maxPool: () => {
        steps.push('maxpool');
        return 1;
      },
      chain: (layers) => layers.reduce((a, b) => a + b, 0),
      concat: (branches) => branches.reduce((a, b) => a + b, 0),
      residual: (mixed, block, { weight, bias }) => {
        expect(weight.dims).toEqual([block.projection.out, block.projection.in, 1, 1]);
        expect([weight.data[0], bias.data[0]]).toEqual([Math.fround(block.scale), Math.fround(block.scale)]);
        steps.push('residual');
        return mixed + 1;
      },
    };
    const trunk = inceptionResnetV1Trunk(r, ops);
    const head = foldedInceptionResnetV1Head(r);
    r.assertAllUsed();
    expect(read).toEqual(keys.map(([key]) => key));
    expect(trunk).toBe(steps.length);
    expect(steps.filter((s) => s === 'conv')).toHaveLength(
      keys.filter(([key]) => key.endsWith('.conv.weight')).length,
    );
    expect(steps.filter((s) => s === 'residual')).toHaveLength(21);
    expect(head.weight.dims).toEqual([INCEPTION_RESNET_V1_HEAD.embedding, INCEPTION_RESNET_V1_HEAD.features]);
  });
});

describeWithSharedData(
  'INCEPTION_RESNET_V1_BLOCKS against facenet-pytorch’s state dict',
  ['reference/inception_resnet_v1_synthetic.json'],
  () => {
    it('reads the keys and shapes of InceptionResnetV1(classify=False).state_dict(), in order', () => {
      const reference = JSON.parse(
        readFileSync(sharedPath('reference', 'inception_resnet_v1_synthetic.json'), 'utf8'),
      ) as { state_dict: { key: string; shape: number[] }[] };
      const expected = reference.state_dict
        .filter(({ key }) => !isTrainingOnlyKey(key))
        .map(({ key, shape }) => [key, shape]);
      expect(planKeys()).toEqual(expected);
    });
  },
);
