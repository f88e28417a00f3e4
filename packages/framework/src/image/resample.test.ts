import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import { seededRandom } from '../testing/random.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import { decodeImage } from './decode.js';
import { type CropBox, type ImageLayout, resizeArea, resizeBilinearPil } from './resample.js';
import type { RgbImage } from './types.js';

/** Deterministic floats in [0, 255), so a failure reproduces. */
function pseudoRandomFloats(length: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length }, () => random() * 255);
}

/**
 * Adaptive average pooling written the direct way: for each output sample, find its input rectangle with
 * floating-point floor/ceil and average every sample in it in one 2-D loop.
 */
function bruteForceArea(
  src: Float32Array,
  channels: number,
  srcH: number,
  srcW: number,
  dstH: number,
  dstW: number,
  layout: ImageLayout,
): Float64Array {
  const at = (c: number, y: number, x: number) =>
    layout === 'CHW' ? (c * srcH + y) * srcW + x : (y * srcW + x) * channels + c;
  const outAt = (c: number, y: number, x: number) =>
    layout === 'CHW' ? (c * dstH + y) * dstW + x : (y * dstW + x) * channels + c;
  const out = new Float64Array(channels * dstH * dstW);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < dstH; i++) {
      for (let j = 0; j < dstW; j++) {
        const y0 = Math.floor((i * srcH) / dstH);
        const y1 = Math.ceil(((i + 1) * srcH) / dstH);
        const x0 = Math.floor((j * srcW) / dstW);
        const x1 = Math.ceil(((j + 1) * srcW) / dstW);
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += src[at(c, y, x)]!;
        out[outAt(c, i, j)] = sum / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return out;
}

describe('resizeArea', () => {
  it('matches hand-computed adaptive_avg_pool values', () => {
    // PyTorch: F.adaptive_avg_pool1d(tensor([[[0., 1, 2, 3, 4]]]), 3) == [[[0.5, 2.0, 3.5]]]
    const row = resizeArea(new Float32Array([0, 1, 2, 3, 4]), 1, 1, 5, 1, 3, 'CHW');
    expect(Array.from(row)).toEqual([0.5, 2, 3.5]);
    // 2× upsampling repeats each sample.
    const up = resizeArea(new Float32Array([1, 2, 3, 4]), 1, 2, 2, 4, 4, 'HWC');
    expect(Array.from(up)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  const shapes: [channels: number, srcH: number, srcW: number, dstH: number, dstW: number][] = [
    [3, 12, 16, 6, 8], // integer downscale
    [3, 7, 5, 3, 2], // non-integer, overlapping windows
    [3, 37, 53, 26, 38], // ~0.709, the MTCNN pyramid factor
    [1, 5, 7, 11, 13], // upsampling, non-integer
    [3, 9, 20, 14, 6], // up in height, down in width
    [2, 13, 17, 5, 4], // channels other than 1 and 3 take the generic loop
    [4, 10, 10, 10, 10], // identity
    [3, 1, 9, 1, 4], // one row
    [3, 24, 31, 1, 1], // global average
  ];

  for (const layout of ['HWC', 'CHW'] as const) {
    it.each(shapes)(
      `${layout}: %i×%i×%i -> %i×%i matches a brute-force adaptive average`,
      (c, sh, sw, dh, dw) => {
        const src = pseudoRandomFloats(c * sh * sw, 1 + c * 1000 + sh * 10 + sw);
        const got = resizeArea(src, c, sh, sw, dh, dw, layout);
        const want = bruteForceArea(src, c, sh, sw, dh, dw, layout);
        expect(got).toBeInstanceOf(Float32Array);
        expect(got.length).toBe(want.length);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        // Float32 output of values up to 255: half an ulp is ~8e-6.
        expect(worst).toBeLessThan(2e-5);
      },
    );
  }

  it('gives the same result in HWC and CHW layouts', () => {
    const [c, h, w] = [3, 29, 41];
    const hwc = pseudoRandomFloats(c * h * w, 99);
    const chw = new Float32Array(hwc.length);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++) chw[(k * h + y) * w + x] = hwc[(y * w + x) * c + k]!;
    const a = resizeArea(hwc, c, h, w, 17, 23, 'HWC');
    const b = resizeArea(chw, c, h, w, 17, 23, 'CHW');
    for (let y = 0; y < 17; y++) {
      for (let x = 0; x < 23; x++) {
        for (let k = 0; k < c; k++) expect(b[(k * 17 + y) * 23 + x]).toBe(a[(y * 23 + x) * c + k]);
      }
    }
  });

  it('does not modify its input', () => {
    const src = pseudoRandomFloats(3 * 8 * 8, 5);
    const copy = src.slice();
    resizeArea(src, 3, 8, 8, 5, 5, 'HWC');
    resizeArea(src, 3, 8, 8, 8, 8, 'HWC');
    expect(src).toEqual(copy);
  });

  it('writes into a caller-provided buffer', () => {
    const src = pseudoRandomFloats(3 * 20 * 30, 8);
    const fresh = resizeArea(src, 3, 20, 30, 7, 11, 'HWC');
    const out = new Float32Array(3 * 7 * 11).fill(Number.NaN);
    expect(resizeArea(src, 3, 20, 30, 7, 11, 'HWC', out)).toBe(out);
    expect(out).toEqual(fresh);
    // Disjoint views of one buffer are fine; overlapping ones are refused.
    const shared = new Float32Array(src.length + out.length);
    shared.set(src);
    const view = shared.subarray(src.length);
    expect(resizeArea(shared.subarray(0, src.length), 3, 20, 30, 7, 11, 'HWC', view)).toEqual(fresh);
    expect(() =>
      resizeArea(shared.subarray(0, src.length), 3, 20, 30, 7, 11, 'HWC', shared.subarray(5, 5 + out.length)),
    ).toThrow(InvalidInputError);
    expect(() => resizeArea(src, 3, 20, 30, 7, 11, 'HWC', new Float32Array(10))).toThrow(InvalidInputError);
  });

  it('resizes a 1280×720 RGB frame to the first pyramid level into a reused buffer as into a new one', () => {
    // Its speed is a benchmark's (`npm run bench -- mtcnn`), not a test's.
    const src = pseudoRandomFloats(720 * 1280 * 3, 3);
    const fresh = resizeArea(src, 3, 720, 1280, 510, 907, 'HWC');
    const reused = new Float32Array(510 * 907 * 3).fill(Number.NaN);
    expect(resizeArea(src, 3, 720, 1280, 510, 907, 'HWC', reused)).toBe(reused);
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(reused).equals(bytes(fresh))).toBe(true);
  });

  it('refuses bad arguments', () => {
    const src = new Float32Array(3 * 4 * 4);
    expect(() => resizeArea(src, 3, 4, 5, 2, 2, 'HWC')).toThrow(InvalidInputError);
    expect(() => resizeArea(src, 3, 4, 4, 0, 2, 'HWC')).toThrow(InvalidInputError);
    expect(() => resizeArea(src, 3, 4, 4, 2, 2.5, 'HWC')).toThrow(InvalidInputError);
    expect(() => resizeArea(Array.from(src) as unknown as Float32Array, 3, 4, 4, 2, 2, 'HWC')).toThrow(
      InvalidInputError,
    );
    expect(() => resizeArea(src, 3, 4, 4, 2, 2, 'NHWC' as ImageLayout)).toThrow(InvalidOptionsError);
  });
});

function rgb(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, data };
}

describe('resizeBilinearPil', () => {
  const noise = (() => {
    const f = pseudoRandomFloats(40 * 30 * 3, 11);
    return { width: 40, height: 30, data: Uint8Array.from(f, (v) => Math.floor(v)) } satisfies RgbImage;
  })();

  it('is the identity for a full-image box at the same size', () => {
    expect(resizeBilinearPil(noise, [0, 0, 40, 30], [40, 30])).toEqual(noise);
  });

  it('crops exactly when the box size equals the output size', () => {
    const crop = resizeBilinearPil(noise, [5, 7, 15, 12], [10, 5]);
    const want = rgb(10, 5, (x, y) => {
      const i = ((y + 7) * 40 + x + 5) * 3;
      return [noise.data[i]!, noise.data[i + 1]!, noise.data[i + 2]!];
    });
    expect(crop).toEqual(want);
  });

  it('keeps a constant image constant, down and up', () => {
    const flat = rgb(50, 40, () => [200, 100, 7]);
    for (const size of [
      [13, 9],
      [160, 160],
      [50, 3],
    ] as const) {
      const out = resizeBilinearPil(flat, [3, 2, 47, 39], size);
      expect(out.data.every((v, i) => v === [200, 100, 7][i % 3])).toBe(true);
    }
  });

  it('matches hand-computed Pillow values for a 2× horizontal downscale', () => {
    // 4→2 wide: scale 2, support 2. Output 0 (centre 1) takes taps 0..2 weighted by Pillow's
    // triangle((x - 1 + 0.5) / 2) = [0.75, 0.75, 0.25], normalised to [3/7, 3/7, 1/7]:
    // row [0, 70, 140, 210] gives 70·3/7 + 140/7 = 50.
    const row = rgb(4, 1, (x) => [x * 70, x * 70, x * 70]);
    const out = resizeBilinearPil(row, [0, 0, 4, 1], [2, 1]);
    expect(out.data[0]).toBe(50);
    // Output 1 (centre 3): taps 1..3 with triangle((x + 1 - 3 + 0.5) / 2) = [0.25, 0.75, 0.75] → 160.
    expect(out.data[3]).toBe(160);
  });

  it('pads the part of the box outside the image with black, as Pillow crop does', () => {
    const box: CropBox = [-6, -4, 30, 25];
    const padded = rgb(36, 29, (x, y) => {
      const sx = x - 6;
      const sy = y - 4;
      if (sx < 0 || sy < 0 || sx >= noise.width || sy >= noise.height) return [0, 0, 0];
      const i = (sy * noise.width + sx) * 3;
      return [noise.data[i]!, noise.data[i + 1]!, noise.data[i + 2]!];
    });
    for (const size of [
      [17, 11],
      [50, 45],
    ] as const) {
      expect(resizeBilinearPil(noise, box, size)).toEqual(resizeBilinearPil(padded, [0, 0, 36, 29], size));
    }
    // Past the right and bottom edges too, and a box entirely outside the image.
    const farBox: CropBox = [30, 20, 55, 41];
    const far = resizeBilinearPil(noise, farBox, [9, 8]);
    const farPadded = rgb(25, 21, (x, y) => {
      const sx = x + 30;
      const sy = y + 20;
      if (sx >= noise.width || sy >= noise.height) return [0, 0, 0];
      const i = (sy * noise.width + sx) * 3;
      return [noise.data[i]!, noise.data[i + 1]!, noise.data[i + 2]!];
    });
    expect(far).toEqual(resizeBilinearPil(farPadded, [0, 0, 25, 21], [9, 8]));
    expect(resizeBilinearPil(noise, [100, 100, 120, 110], [4, 4]).data.every((v) => v === 0)).toBe(true);
  });

  it('refuses bad arguments', () => {
    expect(() => resizeBilinearPil(noise, [0, 0, 10.5, 10], [5, 5])).toThrow(InvalidInputError);
    expect(() => resizeBilinearPil(noise, [10, 0, 10, 10], [5, 5])).toThrow(InvalidInputError);
    expect(() => resizeBilinearPil(noise, [0, 0, 10, 10], [0, 5])).toThrow(InvalidInputError);
    expect(() => resizeBilinearPil(noise, [0, 0, 10, 2 ** 40], [2000, 5])).toThrow(InvalidInputError);
    expect(() => resizeBilinearPil(noise, [0, 0, 10] as unknown as CropBox, [5, 5])).toThrow(
      InvalidInputError,
    );
    expect(() =>
      resizeBilinearPil({ width: 2, height: 2, data: new Uint8Array(11) }, [0, 0, 1, 1], [1, 1]),
    ).toThrow(InvalidInputError);
  });
});

interface ReferenceFace {
  readonly box: [number, number, number, number];
  readonly crop_png: string;
}
interface ReferenceImage {
  readonly image: string;
  readonly width: number;
  readonly height: number;
  readonly faces: readonly ReferenceFace[];
}

describeWithSharedData(
  'resizeBilinearPil vs facenet-pytorch crops',
  ['reference/mtcnn.json', 'faces', 'reference/crops'],
  () => {
    it('reproduces every reference crop within 3 grey levels (mean ≤ 1)', async () => {
      const reference = JSON.parse(readFileSync(sharedPath('reference/mtcnn.json'), 'utf8')) as {
        images: ReferenceImage[];
      };
      const rows: string[] = [];
      const mads: number[] = [];
      for (const entry of reference.images) {
        const image = await decodeImage(readFileSync(sharedPath('faces', entry.image)));
        expect([image.width, image.height]).toEqual([entry.width, entry.height]);
        for (const face of entry.faces) {
          const [x1, y1, x2, y2] = face.box;
          // facenet-pytorch's extract_face with margin 0: clamp to the image, then truncate with int().
          const box: CropBox = [
            Math.trunc(Math.max(x1, 0)),
            Math.trunc(Math.max(y1, 0)),
            Math.trunc(Math.min(x2, image.width)),
            Math.trunc(Math.min(y2, image.height)),
          ];
          const crop = resizeBilinearPil(image, box, [160, 160]);
          const want = await decodeImage(readFileSync(sharedPath('reference', face.crop_png)));
          expect([want.width, want.height]).toEqual([160, 160]);
          let sum = 0;
          let worst = 0;
          for (let i = 0; i < want.data.length; i++) {
            const d = Math.abs(crop.data[i]! - want.data[i]!);
            sum += d;
            worst = Math.max(worst, d);
          }
          const mad = sum / want.data.length;
          mads.push(mad);
          rows.push(`${face.crop_png}: MAD ${mad.toFixed(4)}, max ${worst}`);
          expect(mad, face.crop_png).toBeLessThanOrEqual(3);
        }
      }
      const mean = mads.reduce((a, b) => a + b, 0) / mads.length;
      console.log(
        `${rows.join('\n')}\n${mads.length} crops: mean MAD ${mean.toFixed(4)}, max MAD ${Math.max(...mads).toFixed(4)}`,
      );
      expect(mads.length).toBeGreaterThan(0);
      expect(mean).toBeLessThanOrEqual(1);
    });
  },
);
