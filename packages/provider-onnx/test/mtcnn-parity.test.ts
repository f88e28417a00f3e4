import { readFile } from 'node:fs/promises';
import { type Box, decodeImage, type FaceDetection, type RgbImage } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

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

function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const area = (x: Box) => (x[2] - x[0]) * (x[3] - x[1]);
  return inter / (area(a) + area(b) - inter);
}

async function decodeFile(file: string): Promise<RgbImage> {
  return decodeImage(await readFile(file), { maxPixels: 50_000_000 });
}

describeWithSharedData(
  'onnx MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    const provider = createOnnxProvider({ intraOpNumThreads: 2 });
    let detector: ReturnType<typeof provider.detector>;
    let reference: RefImage[];

    beforeAll(async () => {
      const p = createOnnxProvider({ intraOpNumThreads: 2, modelStore: await mirrorStore() });
      detector = p.detector('mtcnn');
      await detector.ready();
      reference = JSON.parse(await readFile(sharedPath('reference', 'mtcnn.json'), 'utf8')).images;
    });
    afterAll(() => detector?.dispose());

    it('matches every reference face and finds no others, on every image', async () => {
      const ious: number[] = [];
      let worstScore = 0;
      let worstLandmark = 0;
      let worstCropMad = 0;
      let sumCropMad = 0;
      const failures: string[] = [];
      for (const ref of reference) {
        const image = await decodeFile(sharedPath('faces', ref.image));
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
          const refCrop = await decodeFile(sharedPath('reference', rf.crop_png));
          let mad = 0;
          for (let i = 0; i < crop.data.length; i++) mad += Math.abs(crop.data[i]! - refCrop.data[i]!);
          mad /= crop.data.length;
          worstCropMad = Math.max(worstCropMad, mad);
          sumCropMad += mad;
        }
        faces.forEach((f, i) => {
          if (!used.has(i))
            failures.push(
              `${ref.image}: extra detection ${JSON.stringify(f.box)} score ${f.score.toFixed(3)}`,
            );
        });
      }
      const meanIou = ious.reduce((a, b) => a + b, 0) / ious.length;
      console.log(
        `MTCNN parity over ${reference.length} images, ${ious.length} faces: mean IoU ${meanIou.toFixed(5)}, ` +
          `min IoU ${Math.min(...ious).toFixed(5)}, max |score − prob| ${worstScore.toExponential(2)}, ` +
          `max landmark error ${worstLandmark.toFixed(3)} px, crop MAD mean ${(sumCropMad / ious.length).toFixed(3)} ` +
          `max ${worstCropMad.toFixed(3)} grey levels`,
      );
      expect(failures).toEqual([]);
      expect(meanIou).toBeGreaterThanOrEqual(0.99);
      expect(worstScore).toBeLessThanOrEqual(0.01);
      expect(worstLandmark).toBeLessThanOrEqual(2);
      expect(worstCropMad).toBeLessThanOrEqual(3);
    });

    it('finds no face in white.png', async () => {
      const image = await decodeFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'));
      expect(await detector.detect(image)).toEqual([]);
    });
  },
);
