import { describe, expect, it } from 'vitest';
import { seededRandom as prng } from '../testing/random.js';
import { FrameSampling, type SamplingKind } from './sampling.js';

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

describe.each(['wasm', 'js'] as const)('FrameSampling (%s)', (kind: SamplingKind) => {
  const frames = [randomImage(61, 47, 7), randomImage(33, 90, 8)];

  it('runs the requested implementation', () => {
    expect(new FrameSampling(kind).kind).toBe(kind);
  });

  it('equals the window-by-window definition for every frame of a run', () => {
    const sampling = new FrameSampling(kind);
    const sampler = sampling.load(frames);
    const cases = [
      [0, [0, 0, 61, 47], 29, 38],
      [1, [0, 0, 33, 90], 64, 24],
      [0, [5, 9, 31, 30], 24, 24],
      [1, [3, 50, 30, 40], 48, 48],
      [0, [60, 46, 1, 1], 3, 3],
    ] as const;
    const sizes = cases.map(([, , h, w]) => 3 * h * w);
    const out = sampler.output(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const [index, rect, outH, outW] of cases) {
      sampler.sample(index, rect[0], rect[1], rect[2], rect[3], outH, outW, at);
      at += 3 * outH * outW;
    }
    at = 0;
    for (const [index, rect, outH, outW] of cases) {
      const expected = naiveArea(frames[index]!, [...rect], outH, outW);
      expect(Array.from(out.subarray(at, at + expected.length))).toEqual(Array.from(expected));
      at += expected.length;
    }
  });

  it('gives the same results when reused for other frames, larger and smaller', () => {
    const sampling = new FrameSampling(kind);
    for (const [w, h, seed] of [
      [20, 16, 1],
      [200, 150, 2],
      [40, 30, 3],
    ] as const) {
      const frame = randomImage(w, h, seed);
      const sampler = sampling.load([frame]);
      const out = sampler.output(3 * 24 * 24);
      sampler.sample(0, 2, 3, w - 4, h - 5, 24, 24, 0);
      expect(Array.from(out)).toEqual(Array.from(naiveArea(frame, [2, 3, w - 4, h - 5], 24, 24)));
    }
  });

  it('is exact where the running sums wrap around 2^32', () => {
    // 4200×4100 white pixels (17.2 MP, under the 25 MP decode limit): the table's sums pass 2^32 (from about
    // 16.8 M pixels) and are kept modulo 2^32; window sums stay exact.
    const [width, height] = [4200, 4100];
    const big = { width, height, data: new Uint8Array(width * height * 3).fill(255) };
    big.data[((height - 1) * width + width - 1) * 3] = 0;
    const sampler = new FrameSampling(kind).load([big]);
    const out = sampler.output(3 * 12 * 12);
    sampler.sample(0, width - 1200, height - 1200, 1200, 1200, 12, 12, 0);
    const white = (255 - 127.5) * 0.0078125;
    // Windows are 100×100; the last red one holds the one black pixel.
    const lastRed = (Math.fround(Math.fround((255 * (100 * 100 - 1)) / 100) / 100) - 127.5) * 0.0078125;
    expect(out[0]).toBe(white);
    expect(out[143]).toBe(lastRed);
    expect(out[144 + 143]).toBe(white);
  });

  it('handles windows too large for float32 sums and outputs wider than its bound table', () => {
    // 300×300 random pixels into 1×1: one window of 90,000 pixels (sum above 2^24).
    const frame = randomImage(300, 300, 4);
    const sampler = new FrameSampling(kind).load([frame]);
    const out = sampler.output(3 + 3 * 2 * 9000);
    sampler.sample(0, 0, 0, 300, 300, 1, 1, 0);
    expect(Array.from(out.subarray(0, 3))).toEqual(Array.from(naiveArea(frame, [0, 0, 300, 300], 1, 1)));
    sampler.sample(0, 0, 0, 300, 2, 2, 9000, 3);
    expect(Array.from(out.subarray(3))).toEqual(Array.from(naiveArea(frame, [0, 0, 300, 2], 2, 9000)));
  });
});
