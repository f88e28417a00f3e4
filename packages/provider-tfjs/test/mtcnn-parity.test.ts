import { readFile } from 'node:fs/promises';
import { type Box, decodeImage, type FaceDetection, type MtcnnDetector } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createTfjsProvider, type TfjsBackendName } from '@facerec/provider-tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeFace, describeOnBackend, iou, mirrorStore, quiet, TEST_BACKENDS } from './helpers.js';

interface RefFace {
  box: Box;
  prob: number;
  landmarks: [number, number][];
  crop_png: string;
}
interface RefImage {
  image: string;
  width: number;
  height: number;
  faces: RefFace[];
}

/**
 * Which reference images each backend checks. `wasm` checks every image. The pure-JavaScript `cpu` backend
 * needs about 20 s per megapixel on a busy 2-core machine, so it checks every image under one megapixel:
 * all but the four facenet-pytorch portraits (1.8–4.1 Mpx) and bbt1.jpg (1.05 Mpx), i.e. 40 of 45 images
 * and 57 of 67 faces, still including four group photos and white.png. The full set would take over five
 * minutes there (the subset about 75 s); the networks are the same on both backends. With
 * `FACEREC_FULL_PARITY=1` (set by CI) the cpu backend checks every image too.
 */
const IMAGE_FILTER: Record<(typeof TEST_BACKENDS)[number], (ref: RefImage) => boolean> = {
  wasm: () => true,
  cpu: (ref) => process.env.FACEREC_FULL_PARITY === '1' || ref.width * ref.height < 1_000_000,
};

function parity(backend: (typeof TEST_BACKENDS)[number]): void {
  let detector: MtcnnDetector;
  let reference: RefImage[];

  beforeAll(async () => {
    const provider = createTfjsProvider({
      backend: backend as TfjsBackendName,
      modelStore: await mirrorStore(),
      logger: quiet,
    });
    detector = provider.detector('mtcnn');
    await detector.ready();
    reference = (
      JSON.parse(await readFile(sharedPath('reference', 'mtcnn.json'), 'utf8')).images as RefImage[]
    ).filter(IMAGE_FILTER[backend]);
  });
  afterAll(() => detector?.dispose());

  it('matches every reference face and finds no others', { timeout: 1_200_000 }, async () => {
    const ious: number[] = [];
    let worstScore = 0;
    let worstLandmark = 0;
    let worstCropMad = 0;
    let sumCropMad = 0;
    const failures: string[] = [];
    const started = performance.now();
    for (const ref of reference) {
      const image = await decodeFace(ref.image);
      expect([image.width, image.height]).toEqual([ref.width, ref.height]);
      const [found] = await detector.detectFaces([image]);
      const faces = found!.faces;
      const used = new Set<number>();
      for (const rf of ref.faces) {
        let best = -1;
        let bestIou = 0;
        faces.forEach((f: FaceDetection, i: number) => {
          const v = iou(f.box, rf.box);
          if (!used.has(i) && v > bestIou) {
            bestIou = v;
            best = i;
          }
        });
        if (best < 0 || bestIou < 0.95) {
          failures.push(
            `${ref.image}: reference face ${JSON.stringify(rf.box)} unmatched (best IoU ${bestIou.toFixed(3)})`,
          );
          continue;
        }
        used.add(best);
        ious.push(bestIou);
        const f = faces[best]!;
        worstScore = Math.max(worstScore, Math.abs(f.score - rf.prob));
        f.landmarks.forEach((p, k) => {
          worstLandmark = Math.max(
            worstLandmark,
            Math.hypot(p[0] - rf.landmarks[k]![0], p[1] - rf.landmarks[k]![1]),
          );
        });
        const crop = found!.crops[best]!.image;
        const refCrop = await decodeImage(await readFile(sharedPath('reference', rf.crop_png)));
        let mad = 0;
        for (let i = 0; i < crop.data.length; i++) mad += Math.abs(crop.data[i]! - refCrop.data[i]!);
        mad /= crop.data.length;
        worstCropMad = Math.max(worstCropMad, mad);
        sumCropMad += mad;
      }
      faces.forEach((f, i) => {
        if (!used.has(i))
          failures.push(`${ref.image}: extra detection ${JSON.stringify(f.box)} score ${f.score.toFixed(3)}`);
      });
    }
    const meanIou = ious.reduce((a, b) => a + b, 0) / ious.length;
    console.log(
      `tfjs ${backend} MTCNN parity over ${reference.length} images, ${ious.length} faces ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s): mean IoU ${meanIou.toFixed(5)}, ` +
        `min IoU ${Math.min(...ious).toFixed(5)}, max |score − prob| ${worstScore.toExponential(2)}, ` +
        `max landmark error ${worstLandmark.toFixed(3)} px, crop MAD mean ${(sumCropMad / ious.length).toFixed(3)} ` +
        `max ${worstCropMad.toFixed(3)} grey levels`,
    );
    expect(failures).toEqual([]);
    expect(ious.length).toBe(reference.reduce((n, r) => n + r.faces.length, 0));
    expect(meanIou).toBeGreaterThanOrEqual(0.99);
    expect(worstScore).toBeLessThanOrEqual(0.01);
    expect(worstLandmark).toBeLessThanOrEqual(2);
    expect(worstCropMad).toBeLessThanOrEqual(3);
  });

  it('finds no face in white.png', async () => {
    expect(await detector.detect(await decodeFace('face-api.js', 'test', 'white.png'))).toEqual([]);
  });
}

describeWithSharedData(
  'tfjs MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    for (const backend of TEST_BACKENDS) describeOnBackend(backend, 'parity', () => parity(backend));
  },
);
