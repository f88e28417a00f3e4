import { describe, expect, it } from 'vitest';
import { foldBatchNorm, scaleTensor } from './fold.js';

describe('foldBatchNorm', () => {
  it('folds batch norm into a linear layer (W·k row-wise, β − μ·k)', () => {
    const folded = foldBatchNorm(
      { weight: { dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) } },
      {
        weight: { dims: [2], data: Float32Array.of(2, 1) },
        bias: { dims: [2], data: Float32Array.of(0.5, -1) },
        runningMean: { dims: [2], data: Float32Array.of(1, 2) },
        runningVar: { dims: [2], data: Float32Array.of(3, 0) },
        eps: 1,
      },
    );
    expect([...folded.weight.data]).toEqual([1, 2, 3, 4]);
    expect([...folded.bias.data]).toEqual([0.5 - 1, -1 - 2]);
  });

  it('refuses batch-norm tensors that do not hold one value per output channel', () => {
    const one = { dims: [1], data: Float32Array.of(1) };
    expect(() =>
      foldBatchNorm(
        { weight: { dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) } },
        { weight: one, bias: one, runningMean: one, runningVar: one, eps: 1e-5 },
      ),
    ).toThrow(/foldBatchNorm: weight has 1 values, expected 2/);
  });
});

describe('scaleTensor', () => {
  it('multiplies in float64 and rounds once, keeping the dimensions', () => {
    const scaled = scaleTensor({ dims: [1, 2], data: Float32Array.of(0.1, 3) }, 0.17);
    expect(scaled.dims).toEqual([1, 2]);
    expect([...scaled.data]).toEqual([Math.fround(Math.fround(0.1) * 0.17), Math.fround(3 * 0.17)]);
  });
});
