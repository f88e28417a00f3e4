import { describe, expect, it } from 'vitest';
import type { FaceDetection } from '../contracts/detector.js';
import type { RgbImage } from '../image/types.js';
import { estimateYaw, measureFaceQuality, qualityProblem, sharpness } from './quality.js';

const marks = (nose: [number, number], left: [number, number] = [0, 0], right: [number, number] = [2, 0]) =>
  [left, right, nose, [0, 3], [2, 3]] as FaceDetection['landmarks'];

/** A grey image from rows of grey levels. */
function grey(rows: number[][]): RgbImage {
  const height = rows.length;
  const width = rows[0]!.length;
  const data = new Uint8Array(width * height * 3);
  rows.flat().forEach((v, i) => {
    data.fill(v, 3 * i, 3 * i + 3);
  });
  return { width, height, data };
}

describe('estimateYaw', () => {
  it('is the angle of the nose offset along the eye line over half the eye distance', () => {
    expect(estimateYaw(marks([1, 1]))).toBeCloseTo(0, 10); // under the eyes' midpoint: frontal
    expect(estimateYaw(marks([2, 1]))).toBeCloseTo(45, 10); // under an eye: atan(1)
    expect(estimateYaw(marks([0, 1]))).toBeCloseTo(45, 10); // either way
    expect(estimateYaw(marks([1 + Math.sqrt(3), 1]))).toBeCloseTo(60, 10); // atan(√3)
  });

  it('ignores roll: a tilted frontal face is frontal', () => {
    // Eyes on the diagonal; the nose off the midpoint (1, 1) across the eye line only.
    expect(estimateYaw(marks([2, 0], [0, 0], [2, 2]))).toBeCloseTo(0, 10);
    // Along the eye line by √2 = half the eye distance (2√2 / 2): 45°.
    expect(estimateYaw(marks([2, 2], [0, 0], [2, 2]))).toBeCloseTo(45, 10);
  });
});

describe('sharpness', () => {
  it('is the variance of the 4-neighbour Laplacian over the interior pixels', () => {
    // 5×5, one bright pixel on grey 10: interior Laplacians are −400 (centre), +100 ×4, 0 ×4; mean 0.
    const dot = grey([
      [10, 10, 10, 10, 10],
      [10, 10, 10, 10, 10],
      [10, 10, 110, 10, 10],
      [10, 10, 10, 10, 10],
      [10, 10, 10, 10, 10],
    ]);
    expect(sharpness(dot)).toBeCloseTo((400 ** 2 + 4 * 100 ** 2) / 9, 6);
    expect(sharpness(grey(Array.from({ length: 6 }, () => Array(6).fill(77))))).toBeCloseTo(0, 9);
    expect(sharpness(grey([[1, 2]]))).toBe(0); // no interior
  });

  it('weights the channels as luma (0.299 R + 0.587 G + 0.114 B)', () => {
    const red: RgbImage = { width: 3, height: 3, data: new Uint8Array(27).fill(10) };
    red.data[3 * 4] = 110; // the centre, red only: one interior pixel: variance 0
    expect(sharpness(red)).toBeCloseTo(0, 9);
    const five = grey(Array.from({ length: 5 }, () => Array(5).fill(10)));
    five.data[3 * 12] = 110; // centre red +100 → grey +29.9: (4 × 29.9)² + 4 × 29.9² over 9
    expect(sharpness(five)).toBeCloseTo((119.6 ** 2 + 4 * 29.9 ** 2) / 9, 6);
  });

  it("leaves out a crop's black padding rows and columns, whose edge is no detail of the face", () => {
    const content = [
      [10, 10, 10, 10, 10],
      [10, 10, 10, 10, 10],
      [10, 10, 110, 10, 10],
      [10, 10, 10, 10, 10],
      [10, 10, 10, 10, 10],
    ];
    // Black padding above, below and to the right, with a blended row or column (5) next to it, left out too.
    const padded = grey([
      [0, 0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0],
      [5, 5, 5, 5, 5, 5, 0],
      ...content.map((row) => [...row, 5, 0]),
      [5, 5, 5, 5, 5, 5, 0],
      [0, 0, 0, 0, 0, 0, 0],
    ]);
    expect(sharpness(padded)).toBeCloseTo(sharpness(grey(content)), 9);
    // A flat grey face with padding measures flat: 0, not the edge between padding and face.
    const flat = grey([[0, 0, 0, 0], [25, 25, 25, 25], ...Array.from({ length: 4 }, () => [50, 50, 50, 50])]);
    expect(sharpness(flat)).toBeCloseTo(0, 9);
    expect(sharpness(grey(Array.from({ length: 4 }, () => Array(4).fill(0))))).toBe(0);
  });
});

describe('qualityProblem', () => {
  const thresholds = { minFaceSize: 80, maxYaw: 40, minSharpness: 10 };
  it('reports the first failed check: size, then yaw, then sharpness', () => {
    expect(qualityProblem({ size: 60, yaw: 50, sharpness: 1 }, thresholds)?.reason).toBe('face too small');
    expect(qualityProblem({ size: 90, yaw: 50, sharpness: 1 }, thresholds)?.reason).toBe('strong yaw');
    expect(qualityProblem({ size: 90, yaw: 30, sharpness: 1 }, thresholds)).toEqual({
      reason: 'blurry',
      detail: 'sharpness 1.0 (variance of the Laplacian), below minSharpness 10',
    });
    expect(qualityProblem({ size: 80, yaw: 40, sharpness: 10 }, thresholds)).toBeUndefined();
    const off = { minFaceSize: 0, maxYaw: 90, minSharpness: 0 };
    expect(qualityProblem({ size: 1, yaw: 90, sharpness: 0 }, off)).toBeUndefined();
  });

  it('measures the larger side of the box', () => {
    const face: FaceDetection = { box: [10, 20, 40, 70], score: 1, landmarks: marks([1, 1]) };
    expect(measureFaceQuality(face, grey([[0, 0, 0]]))).toEqual({ size: 50, yaw: 0, sharpness: 0 });
  });
});
