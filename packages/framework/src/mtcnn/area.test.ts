import { describe, expect, it } from 'vitest';
import { prng } from '../gallery/__fixtures__/synthetic.js';
import { AreaSampler } from './area.js';

/**
 * PyTorch's `adaptive_avg_pool2d` from its definition, one window at a time: output (i, j) averages input
 * rows ⌊i·h/outH⌋ … ⌈(i+1)·h/outH⌉ − 1 and likewise columns, dividing the integer sum by the window height,
 * then by its width, in float32; then MTCNN's standardisation.
 */
function naiveArea(
  image: { width: number; data: Uint8Array },
  rect: [number, number, number, number],
  outH: number,
  outW: number,
): Float32Array {
  const [x0, y0, w, h] = rect;
  const out = new Float32Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < outH; i++) {
      const r0 = Math.floor((i * h) / outH);
      const r1 = Math.ceil(((i + 1) * h) / outH);
      for (let j = 0; j < outW; j++) {
        const c0 = Math.floor((j * w) / outW);
        const c1 = Math.ceil(((j + 1) * w) / outW);
        let sum = 0;
        for (let y = r0; y < r1; y++) {
          for (let x = c0; x < c1; x++) sum += image.data[((y0 + y) * image.width + x0 + x) * 3 + c]!;
        }
        const mean = Math.fround(Math.fround(sum / (r1 - r0)) / (c1 - c0));
        out[(c * outH + i) * outW + j] = (mean - 127.5) * 0.0078125;
      }
    }
  }
  return out;
}

function randomImage(width: number, height: number, seed: number) {
  const rand = prng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { width, height, data };
}

describe('AreaSampler', () => {
  const image = randomImage(61, 47, 7);
  const sampler = new AreaSampler(image);

  it.each([
    ['whole image, down to a pyramid level', [0, 0, 61, 47], 29, 38],
    ['whole image, up-sampled', [0, 0, 61, 47], 60, 90],
    ['a box to 24×24', [5, 9, 31, 30], 24, 24],
    ['a narrow box to 48×48', [40, 2, 7, 44], 48, 48],
    ['a box touching the bottom-right corner', [30, 20, 31, 27], 12, 12],
    ['a single pixel', [60, 46, 1, 1], 3, 3],
  ] as const)('equals the window-by-window definition: %s', (_, rect, outH, outW) => {
    const expected = naiveArea(image, [...rect], outH, outW);
    const out = new Float32Array(expected.length + 10).fill(Number.NaN);
    sampler.sample(rect[0], rect[1], rect[2], rect[3], outH, outW, out, 10);
    expect(Array.from(out.subarray(10))).toEqual(Array.from(expected));
    expect(Number.isNaN(out[9])).toBe(true);
  });

  it('is exact where the running sums wrap around 2^32', () => {
    // 4200×4100 white pixels (17.2 MP, under the 25 MP decode limit): the table's sums pass 2^32 (from about
    // 16.8 M pixels) and are kept modulo 2^32; window sums stay exact.
    const [width, height] = [4200, 4100];
    const big = { width, height, data: new Uint8Array(width * height * 3).fill(255) };
    big.data[((height - 1) * width + width - 1) * 3] = 0;
    const out = new Float32Array(3 * 12 * 12);
    new AreaSampler(big).sample(width - 1200, height - 1200, 1200, 1200, 12, 12, out, 0);
    const white = (255 - 127.5) * 0.0078125;
    // Windows are 100×100; the last red one holds the one black pixel.
    const lastRed = (Math.fround(Math.fround((255 * (100 * 100 - 1)) / 100) / 100) - 127.5) * 0.0078125;
    expect(out[0]).toBe(white);
    expect(out[143]).toBe(lastRed);
    expect(out[144 + 143]).toBe(white);
  });

  it('reuses caller-provided storage', () => {
    const storage = new Uint32Array(62 * 48 * 3 + 5);
    const reused = new AreaSampler(image, (length) => storage.subarray(0, length));
    const a = new Float32Array(3 * 12 * 12);
    const b = new Float32Array(3 * 12 * 12);
    reused.sample(3, 4, 20, 20, 12, 12, a, 0);
    sampler.sample(3, 4, 20, 20, 12, 12, b, 0);
    expect(a).toEqual(b);
    expect(storage[62 * 3 + 3]).toBe(image.data[0]);
  });
});
