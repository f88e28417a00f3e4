import { describe, expect, it } from 'vitest';
import { prng } from './__fixtures__/synthetic.js';
import { createDotIndex, type DotKernelName, MAX_QUERIES_PER_PASS, wasmSimdAvailable } from './kernel.js';

const kernels: DotKernelName[] = ['js', 'wasm'];

function randomMatrix(rows: number, dim: number, seed: number): Float32Array {
  const rand = prng(seed);
  return Float32Array.from({ length: rows * dim }, () => rand() * 2 - 1);
}

describe('dot-product kernels', () => {
  it('WebAssembly SIMD is available on the supported Node versions', () => {
    expect(wasmSimdAvailable()).toBe(true);
  });

  // Dimensions below, at and off the 16-float row padding; 2,100 rows cross the 2,048-row block boundary.
  describe.each(kernels)('%s kernel', (kernel) => {
    it.each([
      [1, 5],
      [13, 37],
      [128, 2100],
      [512, 300],
    ])('matches a float64 brute force for dimension %i, %i rows, 1 to 8 queries', (dim, rows) => {
      const matrix = randomMatrix(rows, dim, dim * 7919 + rows);
      const index = createDotIndex(matrix, rows, dim, kernel);
      expect(index.kernel).toBe(kernel);
      for (let count = 1; count <= MAX_QUERIES_PER_PASS; count++) {
        const queries = randomMatrix(count, dim, count);
        const seen = new Uint8Array(rows);
        let maxError = 0;
        index.scan(queries, count, (start, n, dots, stride) => {
          expect(stride).toBeGreaterThanOrEqual(count);
          for (let r = 0; r < n; r++) {
            seen[start + r]! += 1;
            for (let k = 0; k < count; k++) {
              let exact = 0;
              for (let j = 0; j < dim; j++) exact += matrix[(start + r) * dim + j]! * queries[k * dim + j]!;
              // Entries in [−1, 1): |dot| ≤ dim; float32 accumulation error stays far below 1e-6 · dim.
              maxError = Math.max(maxError, Math.abs(dots[r * stride + k]! - exact) / dim);
            }
          }
        });
        expect(seen.every((s) => s === 1)).toBe(true);
        expect(maxError).toBeLessThan(1e-6);
      }
    });

    it('gives each row back, without the padding', () => {
      const matrix = randomMatrix(3, 20, 1);
      const index = createDotIndex(matrix, 3, 20, kernel);
      for (let r = 0; r < 3; r++) {
        expect(Array.from(index.rowView(r))).toEqual(Array.from(matrix.subarray(r * 20, (r + 1) * 20)));
      }
    });

    it('copes with an empty matrix', () => {
      const index = createDotIndex(new Float32Array(0), 0, 8, kernel);
      let calls = 0;
      index.scan(new Float32Array(8), 1, () => calls++);
      expect(calls).toBe(0);
    });
  });

  it.each(kernels)('%s: refuses more queries than one pass takes', (kernel) => {
    const index = createDotIndex(new Float32Array(8), 1, 8, kernel);
    expect(() => index.scan(new Float32Array(32), MAX_QUERIES_PER_PASS + 1, () => {})).toThrow(RangeError);
  });

  it('refuses a matrix whose length is not rows × dimension', () => {
    expect(() => createDotIndex(new Float32Array(10), 3, 4)).toThrow(/expected 3 × 4/);
  });
});
