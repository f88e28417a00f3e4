import { describe, expect, it } from 'vitest';
import type { FaceDetection, FiveLandmarks, Point } from '../contracts/detector.js';
import type { CropPolicy } from '../contracts/embedder.js';
import { InvalidOptionsError } from '../errors.js';
import { EmbedderMismatchError } from '../gallery/errors.js';
import { FileGallery } from '../gallery/gallery.js';
import { resizeBilinearPil } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import { FACEAPI_RESNET } from '../registry/builtin.js';
import { seededRandom } from '../testing/random.js';
import {
  alignedCropTransform,
  DLIB_FIVE_POINT_TEMPLATE,
  eyesMouthSquare,
  fitSimilarity,
  warpFootprint,
  warpSimilarity,
} from './align.js';
import { parseCropPolicy } from './crop.js';
import { extractFace } from './extract.js';

// The landmark-driven crop policies: the geometry (align.ts) and the crops extractFace cuts with it.

/** A `width` × `height` frame of seeded random pixels. */
function randomImage(width: number, height: number, seed: number): RgbImage {
  const random = seededRandom(seed);
  return {
    width,
    height,
    data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(random() * 256)),
  };
}

const pixel = (image: RgbImage, x: number, y: number) =>
  Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

describe('DLIB_FIVE_POINT_TEMPLATE', () => {
  it("is dlib's mean face at MTCNN's five points (sums of dlib's coordinates done by hand)", () => {
    const [leftEye, rightEye, nose, mouthLeft, mouthRight] = DLIB_FIVE_POINT_TEMPLATE;
    // (0.121737 + 0.187122 + 0.265825 + 0.334606 + 0.260918 + 0.182743) / 6 and the y's likewise.
    expect(leftEye[0]).toBeCloseTo(1.352951 / 6, 9);
    expect(leftEye[1]).toBeCloseTo(1.295942 / 6, 9);
    expect(rightEye[0]).toBeCloseTo(4.528568 / 6, 9);
    expect(rightEye[1]).toBeCloseTo(1.295942 / 6, 9);
    expect(nose).toEqual([0.490127, 0.515625]);
    expect(mouthLeft).toEqual([0.254149, 0.780233]);
    expect(mouthRight).toEqual([0.726104, 0.780233]);
    // dlib's mean face is symmetric about the nose.
    expect(leftEye[0] + rightEye[0]).toBeCloseTo(2 * nose[0], 5);
  });
});

describe('fitSimilarity', () => {
  it('recovers a rotation, scale and translation exactly', () => {
    const [a, b, tx, ty] = [2 * Math.cos(Math.PI / 6), 2 * Math.sin(Math.PI / 6), 5, -3];
    const from: Point[] = [
      [0, 0],
      [1, 0],
      [0, 1],
      [2, 3],
      [-4, 1.5],
    ];
    const to = from.map(([x, y]): Point => [a * x - b * y + tx, b * x + a * y + ty]);
    const fit = fitSimilarity(from, to);
    expect(fit.a).toBeCloseTo(a, 12);
    expect(fit.b).toBeCloseTo(b, 12);
    expect(fit.tx).toBeCloseTo(tx, 12);
    expect(fit.ty).toBeCloseTo(ty, 12);
  });

  it('is the least-squares fit: symmetric noise on a square cancels out', () => {
    // A square moved by (10, 20) and stretched 1.1× along x only: a similarity scales x and y alike, and the
    // least-squares one splits the stretch, Σ(1.1 x² + y²) / Σ(x² + y²) = 8.4 / 8 = 1.05, with no rotation.
    const from: Point[] = [
      [-1, -1],
      [1, -1],
      [1, 1],
      [-1, 1],
    ];
    const to = from.map(([x, y]): Point => [10 + 1.1 * x, 20 + y]);
    const fit = fitSimilarity(from, to);
    expect(fit.a).toBeCloseTo(1.05, 12);
    expect(fit.b).toBeCloseTo(0, 12);
    expect(fit.tx).toBeCloseTo(10, 12);
    expect(fit.ty).toBeCloseTo(20, 12);
  });

  it('refuses point sets it cannot fit', () => {
    expect(() => fitSimilarity([[1, 1]], [[2, 2]])).toThrow(RangeError);
    expect(() =>
      fitSimilarity(
        [
          [3, 3],
          [3, 3],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ),
    ).toThrow('coincide');
  });
});

describe('warpSimilarity', () => {
  const image = randomImage(6, 6, 7);

  it('copies the frame under the identity', () => {
    expect(warpSimilarity(image, { a: 1, b: 0, tx: 0, ty: 0 }, 6)).toEqual(image);
  });

  it('moves by whole pixels exactly, repeating the edge outside the frame', () => {
    const out = warpSimilarity(image, { a: 1, b: 0, tx: 1, ty: 2 }, 6);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++)
        expect(pixel(out, x, y)).toEqual(pixel(image, Math.min(5, x + 1), Math.min(5, y + 2)));
    }
  });

  it('turns a quarter turn the right way: crop (x, y) shows frame (tx − 1 − y, x + ty)', () => {
    // b = 1: frame X = −(y + ½) + tx, Y = (x + ½) + ty; pixel centres land on pixel centres.
    const out = warpSimilarity(image, { a: 0, b: 1, tx: 6, ty: 0 }, 6);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) expect(pixel(out, x, y)).toEqual(pixel(image, 5 - y, x));
    }
  });

  it('averages the footprint when it shrinks the face (2×: the mean of each 2 × 2 block)', () => {
    const grey = (values: number[]): RgbImage => ({
      width: 4,
      height: 4,
      data: Uint8Array.from(values.flatMap((v) => [v, v, v])),
    });
    // prettier-ignore
    const frame = grey([10, 20, 100, 101, 30, 40, 102, 104, 0, 0, 255, 255, 0, 1, 255, 254]);
    const out = warpSimilarity(frame, { a: 2, b: 0, tx: 0, ty: 0 }, 2);
    // (10+20+30+40)/4 = 25, (100+101+102+104)/4 = 101.75 → 102, 1/4 → 0, (255·3+254)/4 = 254.75 → 255.
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([25, 102, 0, 255]);
  });

  it('gives the integer box around the rotated footprint', () => {
    expect(warpFootprint({ a: 0, b: 1, tx: 6, ty: 0 }, 6)).toEqual([0, 0, 6, 6]);
    expect(warpFootprint({ a: 1.5, b: 0, tx: 10.2, ty: -3.7 }, 10)).toEqual([10, -4, 26, 12]);
  });
});

describe('alignedCropTransform', () => {
  it('maps the template, scaled into the crop inside the margin, onto the landmarks', () => {
    // Landmarks that are the template in crop pixels (25 + 100 t for a 150 px crop with margin 50), moved by
    // (30, 40): the fit is that translation.
    const landmarks = DLIB_FIVE_POINT_TEMPLATE.map(
      ([x, y]): Point => [55 + 100 * x, 65 + 100 * y],
    ) as FiveLandmarks;
    const t = alignedCropTransform(landmarks, 150, 50);
    expect(t.a).toBeCloseTo(1, 12);
    expect(t.b).toBeCloseTo(0, 12);
    expect(t.tx).toBeCloseTo(30, 10);
    expect(t.ty).toBeCloseTo(40, 10);
  });
});

describe('eyesMouthSquare', () => {
  it("places face-api.js's square from the eye centres and the middle of the mouth corners", () => {
    // Eyes (40, 50) and (80, 50), mouth corners (45, 95) and (75, 95) → mouth (60, 95). Each eye is
    // √(20² + 45²) = 49.244 from the mouth: side ⌊49.244 / 0.45⌋ = 109. Centroid (60, 65):
    // x = ⌊60 − 0.5 · 109⌋ = 5, y = ⌊65 − 0.43 · 109⌋ = ⌊18.13⌋ = 18.
    const landmarks: FiveLandmarks = [
      [40, 50],
      [80, 50],
      [60, 70],
      [45, 95],
      [75, 95],
    ];
    expect(eyesMouthSquare(landmarks)).toEqual([5, 18, 114, 127]);
    // Widened 1.25×: side ⌊136.79⌋ = 136, x = ⌊60 − 68⌋ = −8, y = ⌊65 − 58.48⌋ = 6.
    expect(eyesMouthSquare(landmarks, 1.25)).toEqual([-8, 6, 128, 142]);
  });
});

const face = (landmarks: FiveLandmarks): FaceDetection => ({ box: [0, 0, 1, 1], score: 1, landmarks });
const policy = (shape: CropPolicy['shape'], margin = 0, size = 150): CropPolicy => ({
  size: { width: size, height: size },
  shape,
  margin,
});
// face-api.js's square for these is [5, 18, 114, 127] (worked out in align.test.ts).
const LANDMARKS: FiveLandmarks = [
  [40, 50],
  [80, 50],
  [60, 70],
  [45, 95],
  [75, 95],
];

describe("extractFace, shape 'eyes-mouth'", () => {
  it('cuts the square where it lies inside the frame', () => {
    const frame = randomImage(200, 200, 3);
    const crop = extractFace(frame, face(LANDMARKS), policy('eyes-mouth'));
    expect(crop.cropBox).toEqual([5, 18, 114, 127]);
    expect(crop.image).toEqual(resizeBilinearPil(frame, [5, 18, 114, 127], [150, 150]));
  });

  it('takes the whole frame of a face shot tighter than the square (as face-api.js does with bbt)', () => {
    // Eyes (20, 30), (80, 30), mouth (50, 85): side ⌊√(30² + 55²) / 0.45⌋ = 139, square [−20, −12, 119, 127].
    const frame = randomImage(100, 100, 4);
    const landmarks: FiveLandmarks = [
      [20, 30],
      [80, 30],
      [50, 60],
      [30, 85],
      [70, 85],
    ];
    const crop = extractFace(frame, face(landmarks), policy('eyes-mouth'));
    expect(crop.cropBox).toEqual([0, 0, 100, 100]);
    expect(crop.image).toEqual(resizeBilinearPil(frame, [0, 0, 100, 100], [150, 150]));
  });

  it('pads a square cut by the frame back to a centred square with black', () => {
    // A grey frame 90 px wide: the square [5, 18, 114, 127] keeps 85 × 109 px; 12 black columns go on each
    // side (face-api.js puts round(24 / 2) after the image). 109 px → 150: crop columns 0–14 see only the left
    // band, 18–131 only the face, 135–149 only the right band.
    const frame: RgbImage = { width: 90, height: 200, data: new Uint8Array(90 * 200 * 3).fill(200) };
    const crop = extractFace(frame, face(LANDMARKS), policy('eyes-mouth'));
    expect(crop.cropBox).toEqual([5, 18, 90, 127]);
    const row = Array.from({ length: 150 }, (_, x) => crop.image.data[(75 * 150 + x) * 3]!);
    expect(row.slice(0, 15)).toEqual(new Array(15).fill(0));
    expect(row.slice(18, 132)).toEqual(new Array(114).fill(200));
    expect(row.slice(135)).toEqual(new Array(15).fill(0));
    // Rows are whole: no band at the top or bottom.
    expect(crop.image.data[(0 * 150 + 75) * 3]).toBe(200);
    expect(crop.image.data[(149 * 150 + 75) * 3]).toBe(200);
  });

  it('widens the square by the margin', () => {
    // Side ⌊109.43 · 150 / 120⌋ = 136 at (−8, 6) (align.test.ts), cut at the left edge.
    const crop = extractFace(randomImage(200, 200, 5), face(LANDMARKS), policy('eyes-mouth', 30));
    expect(crop.cropBox).toEqual([0, 6, 128, 142]);
  });
});

describe("extractFace, shape 'square'", () => {
  const boxed = (box: FaceDetection['box']): FaceDetection => ({ ...face(LANDMARKS), box });

  it('cuts the box where the square lies inside the frame, as before', () => {
    const frame = randomImage(200, 200, 6);
    // A 40 × 60 box: the square is 60 × 60 around its centre (50, 80).
    const crop = extractFace(frame, boxed([30, 50, 70, 110]), policy('square'));
    expect(crop.cropBox).toEqual([20, 50, 80, 110]);
    expect(crop.image).toEqual(resizeBilinearPil(frame, [20, 50, 80, 110], [150, 150]));
  });

  it('keeps the aspect ratio at the frame edge: the part outside is black, not stretched', () => {
    // A grey frame; the 60 × 60 square [−30, 20, 30, 80] has its left half outside. Clamped to [0, 20, 30, 80],
    // its 30 px were stretched over the whole 150 px crop.
    const frame: RgbImage = { width: 100, height: 100, data: new Uint8Array(100 * 100 * 3).fill(200) };
    const crop = extractFace(frame, boxed([-30, 20, 30, 80]), policy('square'));
    expect(crop.cropBox).toEqual([0, 20, 30, 80]);
    const row = Array.from({ length: 150 }, (_, x) => crop.image.data[(75 * 150 + x) * 3]!);
    expect(row.slice(0, 73)).toEqual(new Array(73).fill(0));
    expect(row.slice(77)).toEqual(new Array(73).fill(200));
    expect(crop.image).toEqual(resizeBilinearPil(frame, [-30, 20, 30, 80], [150, 150]));
  });

  it('cuts a face shot tighter than the square on every side whole, unpadded', () => {
    const frame = randomImage(100, 100, 7);
    const crop = extractFace(frame, boxed([-10, -12, 110, 108]), policy('square'));
    expect(crop.cropBox).toEqual([0, 0, 100, 100]);
    expect(crop.image).toEqual(resizeBilinearPil(frame, [0, 0, 100, 100], [150, 150]));
  });
});

describe("extractFace, shape 'aligned'", () => {
  it('fits the template to the landmarks: a face at the template, moved, is cut out unchanged', () => {
    // The template in a 150 px crop with margin 50 is 25 + 100 t; these landmarks are that, moved by (30, 40).
    const frame = randomImage(300, 300, 6);
    const landmarks = DLIB_FIVE_POINT_TEMPLATE.map(
      ([x, y]): Point => [55 + 100 * x, 65 + 100 * y],
    ) as FiveLandmarks;
    const crop = extractFace(frame, face(landmarks), policy('aligned', 50));
    for (const [x, y] of [
      [0, 0],
      [149, 0],
      [75, 75],
      [3, 140],
      [149, 149],
    ] as const) {
      const at = (y * 150 + x) * 3;
      const from = ((y + 40) * 300 + x + 30) * 3;
      expect(Array.from(crop.image.data.subarray(at, at + 3))).toEqual(
        Array.from(frame.data.subarray(from, from + 3)),
      );
    }
    crop.cropBox.forEach((v, i) => {
      expect(Math.abs(v - [30, 40, 180, 190][i]!)).toBeLessThanOrEqual(1);
    });
  });
});

describe('parseCropPolicy', () => {
  it('accepts every shape and names the valid ones for another', () => {
    for (const shape of ['box', 'square', 'eyes-mouth', 'aligned'] as const)
      expect(parseCropPolicy(policy(shape, 10))).toEqual(policy(shape, 10));
    const bad = { ...policy('box'), shape: 'circle' } as unknown as CropPolicy;
    expect(() => parseCropPolicy(bad)).toThrow(InvalidOptionsError);
    expect(() => parseCropPolicy(bad)).toThrow(/eyes-mouth/);
  });
});

describe("a gallery enrolled with faceapi-resnet's previous crop", () => {
  it('is refused by the current embedder, naming both crops', () => {
    const current = {
      modelId: 'faceapi-resnet',
      weightsSha256: undefined,
      dimension: FACEAPI_RESNET.dimension,
      preprocessing: FACEAPI_RESNET.preprocessing,
    };
    const before = { ...current, preprocessing: { ...current.preprocessing, crop: policy('square') } };
    const gallery = FileGallery.parse(FileGallery.create({ embedder: before, identities: [] }).toText());
    expect(() => gallery.assertCompatible(current)).toThrow(EmbedderMismatchError);
    expect(() => gallery.assertCompatible(current)).toThrow(/square crop with margin 0.*eyes-mouth crop/);
  });
});
