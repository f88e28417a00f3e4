import { describe, expect, it } from 'vitest';
import { StateDictReader } from '../checkpoint/reader.js';
import type { StateDict } from '../checkpoint/types.js';
import { FACEAPI_RESNET_BLOCKS, FACEAPI_RESNET_FC, faceApiResnetWeightShapes } from './architecture.js';
import { faceApiResnetFc, faceApiResnetReader } from './checkpoint.js';
import { type FaceApiResnetOps, faceApiResnetTrunk } from './network.js';

/** Every weight set to `value(name)`, with the shapes the network reads. */
function weights(value: (name: string) => number): StateDict {
  return new Map(
    [...faceApiResnetWeightShapes()].map(([name, shape]) => [
      name,
      {
        name,
        dtype: 'float32',
        shape,
        data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value(name)),
      },
    ]),
  );
}

describe('faceApiResnetTrunk', () => {
  it('reads every weight in order, folds each scale layer into its conv, and pads odd sizes (150 → 4 → 2)', () => {
    // filters 1, bias 0.5, scale 2, shift 0.25: folded weight 2, bias 0.5 · 2 + 0.25 = 1.25.
    const values: Record<string, number> = { filters: 1, bias: 0.5, weights: 2, biases: 0.25 };
    const stateDict = weights((name) => values[name.split('/').at(-1)!] ?? 3);
    const read: string[] = [];
    class RecordingReader extends StateDictReader {
      override take(key: string, shape: readonly number[]) {
        read.push(key);
        return super.take(key, shape);
      }
    }
    const r = new RecordingReader(stateDict, { model: 'test' });
    const convs: string[] = [];
    const grows: number[] = [];
    const ops: FaceApiResnetOps<number> = {
      conv: (prefix, { weight, bias }, mode, relu) => {
        expect([weight.data[0], bias.data[0]]).toEqual([2, 1.25]);
        convs.push(`${prefix} ${weight.dims.join('×')} ${mode}${relu ? ' relu' : ''}`);
        return 1;
      },
      maxPool: () => 1,
      chain: (layers) => layers.reduce((a, b) => a + b, 0),
      residual: (path) => path,
      residualDown: (path, _block, grow) => {
        grows.push(grow);
        return path;
      },
    };
    faceApiResnetTrunk(r, ops);
    const fc = faceApiResnetFc(r);
    r.assertAllUsed();
    expect(read).toEqual([...faceApiResnetWeightShapes().keys()]);
    expect(read.at(-1)).toBe(FACEAPI_RESNET_FC);
    expect(convs.slice(0, 4)).toEqual([
      'conv32_down 32×3×7×7 valid-stride2 relu',
      'conv32_1/conv1 32×32×3×3 same relu',
      'conv32_1/conv2 32×32×3×3 same',
      'conv32_2/conv1 32×32×3×3 same relu',
    ]);
    expect(convs).toHaveLength(1 + 2 * (FACEAPI_RESNET_BLOCKS.length - 1));
    expect(grows).toEqual([0, 0, 1, 1]);
    expect(fc.dims).toEqual([128, 256]);
  });

  it('names the model in errors', () => {
    const r = faceApiResnetReader(new Map(), 'weights.json');
    expect(() => faceApiResnetTrunk(r, {} as FaceApiResnetOps<number>)).toThrow(
      /weights\.json: FaceRecognitionNet: missing weight "conv32_down\/conv\/filters"/,
    );
  });
});
