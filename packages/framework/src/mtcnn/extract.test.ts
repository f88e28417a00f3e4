import { describe, expect, it } from 'vitest';
import type { CropPolicy } from '../contracts/embedder.js';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { extractFace, fitFaceCrop } from './extract.js';

/** A `width` × `height` image of one grey level. */
const flat = (width: number, height: number, level: number): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(level),
});
const policy = (shape: CropPolicy['shape']): CropPolicy => ({
  size: { width: 4, height: 4 },
  shape,
  margin: 0,
});
/** Row `y` of `image`, one grey level per pixel (the red channel). */
const row = (image: RgbImage, y: number) =>
  Array.from({ length: image.width }, (_, x) => image.data[(y * image.width + x) * 3]);

describe('fitFaceCrop', () => {
  it('stretches a crop to the size for the box policy (facenet-pytorch resizes its box whatever its aspect)', () => {
    const fitted = fitFaceCrop(flat(2, 4, 200), policy('box'));
    expect([fitted.width, fitted.height]).toEqual([4, 4]);
    for (let y = 0; y < 4; y++) expect(row(fitted, y)).toEqual([200, 200, 200, 200]);
  });

  it('pads a crop to a centred square with black for the square policies, then resizes it', () => {
    for (const shape of ['square', 'eyes-mouth', 'aligned'] as const) {
      // 2 wide, 4 tall: one black column on each side.
      const tall = fitFaceCrop(flat(2, 4, 200), policy(shape));
      for (let y = 0; y < 4; y++) expect(row(tall, y)).toEqual([0, 200, 200, 0]);
      // 4 wide, 1 tall: 3 rows missing, round(3 / 2) = 2 after the image (face-api.js's padToSquare) and 1 before.
      const wide = fitFaceCrop(flat(4, 1, 100), policy(shape));
      expect([0, 1, 2, 3].map((y) => row(wide, y))).toEqual([
        [0, 0, 0, 0],
        [100, 100, 100, 100],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ]);
    }
  });

  it('extractFace and fitFaceCrop refuse a crop policy they cannot cut, naming it (not a resize error)', () => {
    const face = {
      box: [10, 10, 40, 40] as [number, number, number, number],
      score: 0.9,
      landmarks: [
        [20, 20],
        [30, 20],
        [25, 25],
        [20, 32],
        [30, 32],
      ] as never,
    };
    const image = flat(64, 64, 9);
    for (const [bad, said] of [
      [{ ...policy('box'), shape: 'oval' }, /extractFace crop: .*shape/],
      [{ ...policy('square'), margin: -50 }, /extractFace crop: .*margin/],
      [{ ...policy('box'), size: { width: 32.5, height: 32.5 } }, /extractFace crop: .*size/],
      [{ ...policy('box'), margin: 4 }, /margin must be smaller than the crop size/],
    ] as const) {
      expect(() => extractFace(image, face, bad as CropPolicy)).toThrow(InvalidOptionsError);
      expect(() => extractFace(image, face, bad as CropPolicy)).toThrow(said);
      expect(() => fitFaceCrop(flat(3, 5, 1), bad as CropPolicy)).toThrow(InvalidOptionsError);
    }
  });

  it('returns a crop of the size already as it is, and refuses what is not an image', () => {
    const exact = flat(4, 4, 7);
    expect(fitFaceCrop(exact, policy('eyes-mouth'))).toBe(exact);
    expect(() => fitFaceCrop({ width: 4, height: 4, data: new Uint8Array(3) }, policy('box'))).toThrow(
      InvalidInputError,
    );
  });
});
