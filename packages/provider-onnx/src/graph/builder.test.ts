import type { FloatTensor } from '@facerec/framework/internal';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  batchNorm,
  conv2d,
  flatten,
  linear,
  maxAbsDiff,
  maxPool2d,
  type Nd,
  permute,
  prelu,
  randomNd,
  seededRandom,
} from './__fixtures__/naive.js';
import { attr, GraphBuilder, ONNX_IR_VERSION, ONNX_OPSET } from './builder.js';
import { decodeModel } from './onnx-schema.js';
import { createSession } from './session.js';

const asFloat = (t: Nd): FloatTensor => ({ dims: t.shape, data: Float32Array.from(t.data) });

async function run(bytes: Uint8Array, input: Nd, outputs: readonly string[]) {
  const session = await createSession(bytes, { intraOpNumThreads: 1 });
  try {
    const result = await session.run({
      input: new Tensor('float32', Float32Array.from(input.data), [...input.shape]),
    });
    return Object.fromEntries(
      outputs.map((name) => {
        const t = result[name]!;
        return [name, { data: t.data as Float32Array, dims: t.dims }];
      }),
    );
  } finally {
    await session.release();
  }
}

describe('GraphBuilder', () => {
  it('runs conv + PReLU + MaxPool(ceil) + Gemm like a direct-loop reference', async () => {
    const rand = seededRandom(1);
    const w = randomNd([4, 3, 3, 3], rand, -0.5, 0.5);
    const b = randomNd([4], rand);
    const slope = randomNd([4], rand, 0, 0.5);
    // 8×10 input → pooled 4×5 with a clipped last window in both directions (ceil mode matters).
    const fcW = randomNd([6, 4 * 4 * 5], rand, -0.2, 0.2);
    const fcB = randomNd([6], rand);

    const g = new GraphBuilder({ name: 'tiny', metadata: { weights_sha256: 'abc' } });
    let x = g.input('input', ['N', 3, 8, 10]);
    x = g.conv(x, { weight: asFloat(w), bias: asFloat(b), padding: [1, 1] });
    x = g.prelu(x, asFloat(slope), 4);
    x = g.maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true });
    x = g.flatten(x);
    x = g.gemm(x, { weight: asFloat(fcW), bias: asFloat(fcB), output: 'out' });
    g.output(x, 'out', ['N', 6]);
    const bytes = g.toBytes();

    const input = randomNd([2, 3, 8, 10], rand);
    const { out } = await run(bytes, input, ['out']);
    const pooled = maxPool2d(prelu(conv2d(input, w, b, [1, 1], [1, 1]), slope), 3, 2, true);
    expect(pooled.shape).toEqual([2, 4, 4, 5]);
    const expected = linear(flatten(pooled), fcW, fcB);
    expect(maxAbsDiff(out!.data, out!.dims, expected)).toBeLessThan(1e-5);
  });

  it('folds batch norm into a convolution, with and without a conv bias', async () => {
    const rand = seededRandom(2);
    const w = randomNd([5, 3, 3, 3], rand);
    const convBias = randomNd([5], rand);
    const gamma = randomNd([5], rand, 0.5, 1.5);
    const beta = randomNd([5], rand);
    const mean = randomNd([5], rand, -0.2, 0.2);
    const variance = randomNd([5], rand, 0.5, 2);
    const bn = {
      weight: asFloat(gamma),
      bias: asFloat(beta),
      runningMean: asFloat(mean),
      runningVar: asFloat(variance),
      eps: 1e-3,
    };
    const input = randomNd([1, 3, 6, 7], rand);

    for (const withBias of [false, true]) {
      const g = new GraphBuilder({ name: 'bn' });
      const x = g.input('input', ['N', 3, 'H', 'W']);
      const y = g.convBatchNorm(x, {
        weight: asFloat(w),
        ...(withBias ? { bias: asFloat(convBias) } : {}),
        batchNorm: bn,
        strides: [2, 1],
        padding: [1, 0],
        output: 'out',
      });
      g.output(y, 'out', ['N', 5, 'h', 'w']);
      const { out } = await run(g.toBytes(), input, ['out']);
      const expected = batchNorm(
        conv2d(input, w, withBias ? convBias : undefined, [2, 1], [1, 0]),
        gamma,
        beta,
        mean,
        variance,
        1e-3,
      );
      expect(maxAbsDiff(out!.data, out!.dims, expected)).toBeLessThan(1e-5);
    }
  });

  it('runs the remaining helpers (Transpose, Reshape, Concat, Add, Mul, Softmax, GAP, L2 normalise)', async () => {
    const rand = seededRandom(3);
    const input = randomNd([3, 2, 3, 4], rand);
    const g = new GraphBuilder({ name: 'helpers' });
    const x = g.input('input', ['N', 2, 3, 4]);
    const t = g.transpose(x, [0, 3, 2, 1]); // [N,4,3,2]
    const r = g.reshape(t, [0, 2, 3, 4]); // [N,2,3,4] in permuted order
    const cat = g.concat([x, r], 1); // [N,4,3,4]
    const sum = g.relu(g.add(cat, g.mulScalar(cat, 0.5)));
    const pooled = g.flatten(g.globalAveragePool(sum)); // [N,4]
    g.output(g.softmax(pooled, 1, 'prob'), 'prob', ['N', 4]);
    g.output(g.l2Normalize(pooled, { output: 'unit' }), 'unit', ['N', 4]);
    const { prob, unit } = await run(g.toBytes(), input, ['prob', 'unit']);

    const pr = permute(input, [0, 3, 2, 1]);
    const n = 3;
    const expectedPooled = new Float64Array(n * 4);
    for (let b = 0; b < n; b++)
      for (let c = 0; c < 4; c++) {
        const src = c < 2 ? input : pr;
        const cc = c % 2;
        let acc = 0;
        for (let i = 0; i < 12; i++) acc += Math.max(0, src.data[(b * 2 + cc) * 12 + i]! * 1.5);
        expectedPooled[b * 4 + c] = acc / 12;
      }
    for (let b = 0; b < n; b++) {
      const row = expectedPooled.subarray(b * 4, b * 4 + 4);
      const norm = Math.hypot(...row);
      const exps = [...row].map(Math.exp);
      const z = exps.reduce((a, v) => a + v, 0);
      for (let c = 0; c < 4; c++) {
        expect(unit!.data[b * 4 + c]).toBeCloseTo(row[c]! / norm, 5);
        expect(prob!.data[b * 4 + c]).toBeCloseTo(exps[c]! / z, 5);
      }
    }
  });

  it('L2 normalisation clamps a zero norm with eps instead of dividing by zero', async () => {
    const g = new GraphBuilder({ name: 'zero' });
    const x = g.input('input', ['N', 3]);
    g.output(g.l2Normalize(x, { output: 'out' }), 'out', ['N', 3]);
    const { out } = await run(g.toBytes(), { shape: [2, 3], data: Float32Array.of(0, 0, 0, 3, 0, 4) }, [
      'out',
    ]);
    expect([...out!.data]).toEqual([0, 0, 0, Math.fround(0.6), Math.fround(0), Math.fround(0.8)]);
  });

  it('writes opset 17, IR 8, producer, metadata, symbolic dims and unique names', () => {
    const g = new GraphBuilder({
      name: 'meta',
      metadata: { weights_sha256: 'deadbeef', weights_url: 'file:x' },
    });
    const x = g.input('input', ['N', 3]);
    const a = g.relu(x);
    const b = g.relu(x);
    const c = g.node('Add', [a, b], {}, { name: 'Relu' });
    g.node('LeakyRelu', [c], { alpha: attr.float(0.25) });
    g.output(c, 'y', ['N', 3]);
    const model = decodeModel(g.toBytes());
    expect(model.irVersion).toBe(ONNX_IR_VERSION);
    expect(model.opsetImport).toEqual([{ domain: '', version: ONNX_OPSET }]);
    expect(model.producerName).toBe('facerec');
    expect(model.metadataProps).toEqual([
      { key: 'weights_sha256', value: 'deadbeef' },
      { key: 'weights_url', value: 'file:x' },
    ]);
    expect(model.graph.input[0]!.type.tensorType.shape.dim).toEqual([{ dimParam: 'N' }, { dimValue: 3 }]);
    const nodeNames = model.graph.node.map((n) => n.name);
    expect(new Set(nodeNames).size).toBe(nodeNames.length);
    const values = model.graph.node.flatMap((n) => n.output);
    expect(new Set(values).size).toBe(values.length);
    expect(model.graph.output.map((o) => o.name)).toEqual(['y']);
    const leaky = model.graph.node.find((n) => n.opType === 'LeakyRelu')!;
    expect(leaky.attribute[0]).toMatchObject({ name: 'alpha', f: 0.25, type: 1 });
  });

  it('writes zero-valued attributes explicitly (onnx.proto is proto2: presence, not defaults)', () => {
    const g = new GraphBuilder({ name: 'zeros' });
    const x = g.input('input', [1, 1, 4, 4]);
    g.output(g.maxPool(x, { kernel: [2, 2], strides: [2, 2], ceilMode: false }), 'y', [1, 1, 2, 2]);
    const node = decodeModel(g.toBytes()).graph.node.find((n) => n.opType === 'MaxPool')!;
    const ceil = node.attribute.find((a) => a.name === 'ceil_mode')!;
    expect(ceil).toMatchObject({ type: 2, i: 0 });
    expect(Object.hasOwn(ceil, 'i')).toBe(true);
    expect(node.attribute.find((a) => a.name === 'pads')).toMatchObject({ type: 7, ints: [0, 0, 0, 0] });
  });

  it('stores initializers as little-endian float32 raw_data', () => {
    const g = new GraphBuilder({ name: 'raw' });
    const x = g.input('input', [1, 2]);
    const w = g.initializer('w', { dims: [2], data: Float32Array.of(1.5, -2) });
    g.output(g.add(x, w), 'y', [1, 2]);
    const init = decodeModel(g.toBytes()).graph.initializer[0]!;
    expect(init).toMatchObject({ name: 'w', dims: [2], dataType: 1 });
    const view = new DataView(init.rawData.buffer, init.rawData.byteOffset, init.rawData.byteLength);
    expect([view.getFloat32(0, true), view.getFloat32(4, true)]).toEqual([1.5, -2]);
  });
});
