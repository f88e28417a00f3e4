import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Box, FaceDetector } from '../contracts/detector.js';
import { decodeImage } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { FACENET_PREPROCESSING } from '../registry/builtin.js';
import { sharedPath } from './shared-data.js';

/** One image of `reference/mtcnn.json`. */
export interface MtcnnReferenceImage {
  readonly image: string;
  readonly width: number;
  readonly height: number;
  readonly faces: readonly {
    readonly box: Box;
    readonly prob: number;
    readonly landmarks: readonly [number, number][];
    readonly crop_png: string;
  }[];
}

/** How a detector's output compares with facenet-pytorch's on the reference images. */
export interface MtcnnParityReport {
  readonly images: number;
  readonly referenceFaces: number;
  /** IoU of each matched reference face. */
  readonly ious: readonly number[];
  readonly meanIou: number;
  readonly maxScoreError: number;
  /** Largest landmark distance, in pixels. */
  readonly maxLandmarkError: number;
  readonly meanCropMad: number;
  readonly maxCropMad: number;
  /** Unmatched reference faces (IoU < `minIou`) and detections without a reference face. */
  readonly failures: readonly string[];
}

/** Reads `reference/mtcnn.json` from the shared data. */
export async function readMtcnnReference(): Promise<MtcnnReferenceImage[]> {
  return JSON.parse(await readFile(sharedPath('reference', 'mtcnn.json'), 'utf8')).images;
}

/**
 * facenet-pytorch's boxes for these images of `reference/mtcnn.json` (paths under `faces/`, as it names them): a
 * detector suite's `expectedFaces`.
 *
 * @example
 * expectedFaces: () => referenceBoxes(['face-api.js/bbt3.jpg', 'facenet-pytorch/multiface.jpg']),
 */
export async function referenceBoxes(images: readonly string[]): Promise<Box[][]> {
  const reference = await readMtcnnReference();
  return images.map((image) => {
    const found = reference.find((r) => r.image === image);
    if (!found) throw new Error(`${image} is not in reference/mtcnn.json`);
    return found.faces.map((f) => f.box);
  });
}

/** Intersection over union of two `[x1, y1, x2, y2]` boxes. */
export function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const area = (x: Box) => (x[2] - x[0]) * (x[3] - x[1]);
  return inter / (area(a) + area(b) - inter);
}

async function decodeShared(...parts: string[]): Promise<RgbImage> {
  return decodeImage(await readFile(sharedPath(...parts)), { maxPixels: 50_000_000 });
}

/**
 * Runs `detector.detectFaces` on every reference image, with facenet-pytorch's crop (`extract_face`'s
 * defaults: the box, 160×160, no margin — InceptionResnetV1's crop policy), and compares with facenet-pytorch's
 * output: each reference face is matched greedily to the unused detection of highest IoU (a match needs
 * `minIou`, default 0.95), then scores, landmarks and crops (mean absolute difference in grey levels) are
 * compared.
 */
export async function mtcnnParityReport(
  detector: Pick<FaceDetector, 'detectFaces'>,
  reference: readonly MtcnnReferenceImage[],
  minIou = 0.95,
): Promise<MtcnnParityReport> {
  const ious: number[] = [];
  const failures: string[] = [];
  let maxScoreError = 0;
  let maxLandmarkError = 0;
  let maxCropMad = 0;
  let sumCropMad = 0;
  for (const ref of reference) {
    const image = await decodeShared('faces', ref.image);
    if (image.width !== ref.width || image.height !== ref.height) {
      failures.push(
        `${ref.image}: decoded as ${image.width}×${image.height}, reference ${ref.width}×${ref.height}`,
      );
      continue;
    }
    const [found] = await detector.detectFaces([image], { crop: FACENET_PREPROCESSING.crop });
    const { faces, crops } = found!;
    const used = new Set<number>();
    for (const rf of ref.faces) {
      let best = -1;
      let bestIou = 0;
      faces.forEach((f, i) => {
        const v = iou(f.box, rf.box);
        if (!used.has(i) && v > bestIou) {
          bestIou = v;
          best = i;
        }
      });
      if (best < 0 || bestIou < minIou) {
        failures.push(
          `${ref.image}: reference face ${JSON.stringify(rf.box)} unmatched (best IoU ${bestIou.toFixed(3)})`,
        );
        continue;
      }
      used.add(best);
      ious.push(bestIou);
      const f = faces[best]!;
      maxScoreError = Math.max(maxScoreError, Math.abs(f.score - rf.prob));
      f.landmarks.forEach((p, k) => {
        maxLandmarkError = Math.max(
          maxLandmarkError,
          Math.hypot(p[0] - rf.landmarks[k]![0], p[1] - rf.landmarks[k]![1]),
        );
      });
      const crop = crops[best]!.image;
      const refCrop = await decodeShared('reference', rf.crop_png);
      let mad = 0;
      for (let i = 0; i < crop.data.length; i++) mad += Math.abs(crop.data[i]! - refCrop.data[i]!);
      mad /= crop.data.length;
      maxCropMad = Math.max(maxCropMad, mad);
      sumCropMad += mad;
    }
    faces.forEach((f, i) => {
      if (!used.has(i))
        failures.push(`${ref.image}: extra detection ${JSON.stringify(f.box)} score ${f.score.toFixed(3)}`);
    });
  }
  return {
    images: reference.length,
    referenceFaces: reference.reduce((n, r) => n + r.faces.length, 0),
    ious,
    meanIou: ious.reduce((a, b) => a + b, 0) / Math.max(ious.length, 1),
    maxScoreError,
    maxLandmarkError,
    meanCropMad: sumCropMad / Math.max(ious.length, 1),
    maxCropMad,
    failures,
  };
}

/** The report as one line for the test log. */
export function formatMtcnnParity(label: string, r: MtcnnParityReport): string {
  return (
    `${label} MTCNN parity over ${r.images} images, ${r.ious.length}/${r.referenceFaces} faces: mean IoU ` +
    `${r.meanIou.toFixed(5)}, min IoU ${Math.min(...r.ious).toFixed(5)}, max |score − prob| ` +
    `${r.maxScoreError.toExponential(2)}, max landmark error ${r.maxLandmarkError.toFixed(3)} px, crop MAD mean ` +
    `${r.meanCropMad.toFixed(3)} max ${r.maxCropMad.toFixed(3)} grey levels`
  );
}

/**
 * Asserts the tolerances every MTCNN provider's parity suite holds to: every reference face matched and no
 * other face found, mean IoU ≥ 0.99, score error ≤ 0.01, landmark error ≤ 2 px and a mean absolute crop
 * difference ≤ 3 grey levels.
 */
export function expectMtcnnParity(report: MtcnnParityReport): void {
  expect(report.failures).toEqual([]);
  expect(report.ious.length).toBe(report.referenceFaces);
  expect(report.meanIou).toBeGreaterThanOrEqual(0.99);
  expect(report.maxScoreError).toBeLessThanOrEqual(0.01);
  expect(report.maxLandmarkError).toBeLessThanOrEqual(2);
  expect(report.maxCropMad).toBeLessThanOrEqual(3);
}

/** Options of {@link mtcnnParityTests}. */
export interface MtcnnParityTestsOptions {
  /** Names the runtime in the printed report, e.g. `onnx` or `tfjs wasm`. */
  readonly label: string;
  /** The provider's `mtcnn` detector, disposed after the tests. */
  readonly create: () => FaceDetector | Promise<FaceDetector>;
  /** Which reference images to check (a slow backend may check a subset). Default: every one. */
  readonly images?: (reference: MtcnnReferenceImage) => boolean;
  /** How many images that is, when every one is checked: guards against a reference file that shrank. */
  readonly expectedImages?: number;
  /** Timeout of the parity test in ms, for slow backends. Default: the configured one. */
  readonly timeout?: number;
}

/**
 * The MTCNN parity tests every provider runs against facenet-pytorch (`reference/mtcnn.json`), registered in
 * the caller's `describe`: every reference face matched within {@link expectMtcnnParity}'s tolerances and no
 * other face found (the report is printed with its duration), and no face at all in `white.png`.
 *
 * @example
 * describeWithSharedData('onnx MTCNN parity', ['reference/mtcnn.json', 'faces'], () => {
 *   mtcnnParityTests({ label: 'onnx', create: () => createOnnxProvider().detector('mtcnn') });
 * });
 */
export function mtcnnParityTests(options: MtcnnParityTestsOptions): void {
  let detector: FaceDetector;
  let reference: MtcnnReferenceImage[];

  beforeAll(async () => {
    detector = await options.create();
    await detector.ready();
    const all = await readMtcnnReference();
    reference = options.images ? all.filter(options.images) : all;
  });
  afterAll(() => detector?.dispose());

  it('matches every reference face and finds no others', { timeout: options.timeout }, async () => {
    const started = performance.now();
    const report = await mtcnnParityReport(detector, reference);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${formatMtcnnParity(options.label, report)} (${seconds} s)`);
    expectMtcnnParity(report);
    if (options.expectedImages !== undefined) expect(report.images).toBe(options.expectedImages);
  });

  it('finds no face in white.png', async () => {
    expect(await detector.detect(await decodeShared('faces', 'face-api.js', 'test', 'white.png'))).toEqual(
      [],
    );
  });
}
