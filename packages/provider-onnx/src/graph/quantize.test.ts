import type { FloatTensor } from '@facerec/framework/internal';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { type Nd, randomNd, seededRandom } from './__fixtures__/naive.js';
import { GraphBuilder } from './builder.js';
import { calibrateRanges, quantizeStatic } from './calibrate.js';
import { decodeModel, OnnxDataType } from './onnx-schema.js';
import { activationParams, quantizeModel, quantizeWeightsPerChannel, WEIGHT_QMAX } from './quantize.js';
import { createSession } from './session.js';

const asFloat = (t: Nd): FloatTensor => ({ dims: t.shape, data: Float32Array.from(t.data) });

/** x → Conv3×3 → ReLU → MaxPool → Conv1×1 (+ x pooled) → ReLU → GlobalAveragePool → Flatten: every QDQ case. */
function tinyResidualNet(): Uint8Array {
  const rand = seededRandom(7);
  const g = new GraphBuilder({ name: 'tiny' });
  const x = g.input('input', ['N', 2, 8, 8]);
  const a = g.relu(
    g.conv(
      x,
      { weight: asFloat(randomNd([4, 2, 3, 3], rand)), bias: asFloat(randomNd([4], rand)), padding: [1, 1] },
      'a',
    ),
  );
  const p = g.maxPool(a, { kernel: [2, 2], strides: [2, 2] }, 'pool');
  const b = g.conv(
    p,
    { weight: asFloat(randomNd([4, 4, 1, 1], rand)), bias: asFloat(randomNd([4], rand)) },
    'b',
  );
  const sum = g.relu(g.add(b, p));
  g.output(g.flatten(g.globalAveragePool(sum)), 'out', ['N', 4]);
  return g.toBytes();
}

const inputs = (seed: number, n: number) => {
  const data = Float32Array.from(randomNd([n, 2, 8, 8], seededRandom(seed)).data);
  return { data, dims: [n, 2, 8, 8] };
};

async function run(bytes: Uint8Array, batch: { data: Float32Array; dims: number[] }): Promise<Float32Array> {
  const session = await createSession(bytes, { intraOpNumThreads: 1 });
  try {
    const { out } = await session.run({ input: new Tensor('float32', batch.data, batch.dims) });
    return out!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('int8 quantization', () => {
  it('quantizes weights per output channel, symmetric, in [−63, 63] (7 bits: no saturation without VNNI)', () => {
    // Channel 0: max |w| = 1 → scale 1/63; −0.6·63 = −37.8, 0.3·63 = 18.9, 0.1·63 = 6.3. Channel 1 is all zeros
    // and keeps scale 1.
    const { values, scales } = quantizeWeightsPerChannel(Float32Array.of(1, -0.6, 0.3, 0.1, 0, 0, 0, 0), 2);
    expect([...values]).toEqual([63, -38, 19, 6, 0, 0, 0, 0]);
    expect(scales[0]).toBe(Math.fround(1 / 63)); // stored as float32
    expect(scales[1]).toBe(1);
  });

  it('picks uint8 activation parameters whose range holds zero exactly', () => {
    // [−1, 3]: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64.
    expect(activationParams({ min: -1, max: 3 })).toEqual({ scale: 4 / 255, zeroPoint: 64 });
    // All positive: widened down to 0, zero point 0 (a ReLU's range).
    expect(activationParams({ min: 0.5, max: 2 })).toEqual({ scale: 2 / 255, zeroPoint: 0 });
    expect(activationParams({ min: -2, max: -1 })).toEqual({ scale: 2 / 255, zeroPoint: 255 });
  });

  it('writes QDQ around every convolution, int8/int32 weights and biases, and drops fused ReLUs', async () => {
    const float = tinyResidualNet();
    const int8 = await quantizeStatic(float, [inputs(1, 4)], { intraOpNumThreads: 1 });
    const model = decodeModel(int8);
    const ops = model.graph.node.map((n) => n.opType);
    expect(ops).not.toContain('Relu');
    const byOutput = new Map(model.graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
    const initializer = new Map(model.graph.initializer.map((t) => [t.name, t]));
    const convs = model.graph.node.filter((n) => n.opType === 'Conv');
    expect(convs).toHaveLength(2);
    for (const conv of convs) {
      const [x, w, b] = conv.input.map((name) => byOutput.get(name)!);
      expect([x!.opType, w!.opType, b!.opType]).toEqual([
        'DequantizeLinear',
        'DequantizeLinear',
        'DequantizeLinear',
      ]);
      const weights = initializer.get(w!.input[0]!)!;
      expect(weights.dataType).toBe(3); // INT8
      // 7 bits: every output channel's largest magnitude is WEIGHT_QMAX (see there).
      const q = new Int8Array(weights.rawData.buffer, weights.rawData.byteOffset, weights.rawData.byteLength);
      const per = q.length / weights.dims[0]!;
      for (let o = 0; o < weights.dims[0]!; o++)
        expect(Math.max(...q.subarray(o * per, (o + 1) * per).map(Math.abs)), `channel ${o}`).toBe(
          WEIGHT_QMAX,
        );
      expect(initializer.get(w!.input[1]!)!.dims).toEqual([4]); // one scale per output channel
      expect(initializer.get(b!.input[0]!)!.dataType).toBe(6); // INT32
      // The output is quantized again, so onnxruntime can fuse the group into QLinearConv.
      expect(
        model.graph.node.some((n) => n.opType === 'QuantizeLinear' && n.input[0] === conv.output[0]),
      ).toBe(true);
    }
    // No float weight is left behind.
    expect(
      model.graph.initializer.filter((t) => t.dataType === OnnxDataType.FLOAT && t.dims.length === 4),
    ).toEqual([]);
  });

  // On an x86 CPU without VNNI this also checks the 7-bit weights: with 8 bits, onnxruntime's 16-bit
  // saturating kernels put the worst error at 10× this bound (measured on an AVX2 EPYC).
  it('stays within a few quantization steps of the float graph on unseen inputs', async () => {
    const float = tinyResidualNet();
    const int8 = await quantizeStatic(float, [inputs(1, 16)], { intraOpNumThreads: 1 });
    const probe = inputs(2, 8);
    const expected = await run(float, probe);
    const actual = await run(int8, probe);
    const range = Math.max(...expected) - Math.min(0, ...expected);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    // Three uint8 steps of the output's range; a wrong scale, zero point or axis is off by far more.
    expect(worst).toBeLessThan((3 * range) / 255);
    expect(worst).toBeGreaterThan(0); // it really ran in int8
  });

  it('refuses an activation without a calibration range', async () => {
    const float = tinyResidualNet();
    const ranges = await calibrateRanges(float, [inputs(1, 2)], { intraOpNumThreads: 1 });
    ranges.delete('input');
    expect(() => quantizeModel(float, ranges)).toThrow(/no calibration range for "input"/);
  });
});
