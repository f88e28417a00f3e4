import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import {
  FACEAPI_MEAN_RGB,
  FACEAPI_PIXEL_DIVISOR,
  FACEAPI_PREPROCESSING,
  type FloatRgbImage,
  faceApiInput,
  padToSquareCentered,
  prepareFaceApiInput,
  resizeBilinearTfjs,
  toFaceApiBatch,
} from './preprocess.js';

/** An image whose every sample encodes its position: R = x, G = y, B = 7. */
function ramp(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([x, y, 7], (y * width + x) * 3);
  }
  return { width, height, data };
}

const pixel = (img: RgbImage | FloatRgbImage, x: number, y: number) => {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
};

/** A single-channel float image (R only), for resize checks by hand. */
function plane(width: number, height: number, values: number[]): FloatRgbImage {
  const data = new Float32Array(width * height * 3);
  values.forEach((v, i) => {
    data[i * 3] = v;
  });
  return { width, height, data };
}
const reds = (img: FloatRgbImage) =>
  Array.from({ length: img.width * img.height }, (_, i) => img.data[i * 3]!);

describe('padToSquareCentered (face-api.js padToSquare, isCenterImage = true)', () => {
  it('pads a tall image left and right; the odd extra column goes to the right', () => {
    const out = padToSquareCentered(ramp(2, 5));
    expect([out.width, out.height]).toEqual([5, 5]);
    // diff 3: Math.round(1.5) = 2 columns after, 1 before.
    for (let y = 0; y < 5; y++) {
      expect(pixel(out, 0, y)).toEqual([0, 0, 0]);
      expect(pixel(out, 1, y)).toEqual([0, y, 7]);
      expect(pixel(out, 2, y)).toEqual([1, y, 7]);
      expect(pixel(out, 3, y)).toEqual([0, 0, 0]);
      expect(pixel(out, 4, y)).toEqual([0, 0, 0]);
    }
  });

  it('pads a wide image top and bottom, evenly when the difference is even', () => {
    const out = padToSquareCentered(ramp(6, 2));
    expect([out.width, out.height]).toEqual([6, 6]);
    const rows = Array.from({ length: 6 }, (_, y) => pixel(out, 3, y));
    expect(rows).toEqual([
      [0, 0, 0],
      [0, 0, 0],
      [3, 0, 7],
      [3, 1, 7],
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });

  it('returns a square image as floats, unchanged', () => {
    const img = ramp(3, 3);
    expect([...padToSquareCentered(img).data]).toEqual([...img.data]);
  });
});

describe('resizeBilinearTfjs (alignCorners = false, halfPixelCenters = false)', () => {
  it('samples at dst · in/out and interpolates, 4 → 3', () => {
    // Rows and columns sample at 0, 4/3 and 8/3.
    const src = plane(4, 1, [0, 30, 60, 90]);
    expect(reds(resizeBilinearTfjs(src, 3, 1))).toEqual([0, 40, 80].map(Math.fround));
    const tall = plane(1, 4, [0, 30, 60, 90]);
    expect(reds(resizeBilinearTfjs(tall, 1, 3))).toEqual([0, 40, 80].map(Math.fround));
  });

  it('clamps the upper neighbour at the last pixel when enlarging, 2 → 4', () => {
    // Samples at 0, 0.5, 1, 1.5: the last would read column 2, which tfjs clamps to column 1.
    expect(reds(resizeBilinearTfjs(plane(2, 1, [10, 20]), 4, 1))).toEqual([10, 15, 20, 20]);
  });

  it('interpolates in both directions', () => {
    const src = plane(2, 2, [0, 10, 20, 30]);
    const out = resizeBilinearTfjs(src, 4, 4);
    expect(reds(out)).toEqual([0, 5, 10, 10, 10, 15, 20, 20, 20, 25, 30, 30, 20, 25, 30, 30]);
  });
});

describe('faceApiInput / prepareFaceApiInput', () => {
  it('passes a 150×150 image through unchanged', () => {
    const img = ramp(150, 150);
    const out = faceApiInput(img);
    expect([out.width, out.height]).toEqual([150, 150]);
    expect(out.data).toBeInstanceOf(Float32Array);
    expect(out.data.every((v, i) => v === img.data[i])).toBe(true);
    const rounded = prepareFaceApiInput(img);
    expect([rounded.width, rounded.height]).toEqual([150, 150]);
    expect(Buffer.compare(rounded.data, img.data)).toBe(0);
  });

  it('pads a 122×178 image to 178×178 (28 black columns each side) and resizes to 150×150', () => {
    const img = ramp(122, 178);
    const out = faceApiInput(img);
    expect([out.width, out.height]).toEqual([150, 150]);
    const scale = 178 / 150;
    for (const [x, y] of [
      [40, 0],
      [75, 75],
      [120, 149],
    ] as const) {
      const sx = x * scale - 28; // red encodes the image column
      const sy = y * scale; // green encodes the row
      const [r, g, b] = pixel(out, x, y);
      expect(r).toBeCloseTo(sx, 3);
      expect(g).toBeCloseTo(Math.min(sy, 177), 3);
      expect(b).toBe(7);
    }
    expect(pixel(out, 0, 50)).toEqual([0, 0, 0]);
    expect(pixel(out, 149, 50)).toEqual([0, 0, 0]);
    const rounded = prepareFaceApiInput(img);
    expect(rounded.data).toBeInstanceOf(Uint8Array);
    let worst = 0;
    for (let i = 0; i < out.data.length; i++)
      worst = Math.max(worst, Math.abs(rounded.data[i]! - out.data[i]!));
    expect(worst).toBeLessThanOrEqual(0.5);
  });

  it('rejects malformed images with InvalidInputError', () => {
    expect(() => faceApiInput({ width: 2, height: 2, data: new Uint8Array(5) })).toThrow(InvalidInputError);
  });
});

describe('toFaceApiBatch', () => {
  it('normalises (x − mean) / 256 into NCHW and NHWC', () => {
    expect(FACEAPI_PIXEL_DIVISOR).toBe(256);
    expect(FACEAPI_PREPROCESSING.mean).toEqual(FACEAPI_MEAN_RGB);
    expect(FACEAPI_PREPROCESSING.std).toEqual([256, 256, 256]);
    const img = ramp(150, 150);
    const f = faceApiInput(img);
    const nchw = toFaceApiBatch([img, f], 'NCHW');
    const nhwc = toFaceApiBatch([img, f], 'NHWC');
    const plane = 150 * 150;
    expect(nchw.length).toBe(2 * 3 * plane);
    const at = (x: number, y: number) => y * 150 + x;
    for (const [x, y] of [
      [0, 0],
      [17, 99],
    ] as const) {
      const expected = [(x - 122.782) / 256, (y - 117.001) / 256, (7 - 104.298) / 256];
      for (let c = 0; c < 3; c++) {
        for (const n of [0, 1]) {
          expect(nchw[n * 3 * plane + c * plane + at(x, y)]).toBeCloseTo(expected[c]!, 6);
          expect(nhwc[n * 3 * plane + at(x, y) * 3 + c]).toBeCloseTo(expected[c]!, 6);
        }
      }
    }
  });

  it('refuses inputs that are not 150×150', () => {
    expect(() => toFaceApiBatch([ramp(150, 149)])).toThrow(InvalidInputError);
    expect(() => toFaceApiBatch([ramp(150, 149)])).toThrow(/input 0 is 150×149/);
    expect(() => toFaceApiBatch([{ width: 150, height: 150, data: new Float32Array(3) }])).toThrow(
      InvalidInputError,
    );
  });
});
