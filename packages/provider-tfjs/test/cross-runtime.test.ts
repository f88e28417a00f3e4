import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeImage, type FaceDetector, type FaceEmbedder, type RgbImage } from '@facerec/framework';
import { describeWithSharedData, iou, readSyntheticReference, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { createTfjsProvider } from '@facerec/provider-tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from './fixtures/synthetic-checkpoint.js';
import { cosine, decodeFace, describeOnBackend, mirrorStore, quiet } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';

/** Frames for the detection comparison: group photos and a portrait, 0.2 to 3.4 megapixels. */
const FRAMES = [
  ['facenet-pytorch', 'multiface.jpg'],
  ['facenet-pytorch', 'angelina_jolie.jpg'],
  ['face-api.js', 'bbt1.jpg'],
  ['face-api.js', 'bbt3.jpg'],
  ['face-api.js', 'bbt5.jpg'],
  ['face-api.js', 'test', 'faces.jpg'],
] as const;

/**
 * The same checkpoint and frames through both providers: galleries built with one must be usable with the
 * other, so model ids must agree and vectors must be interchangeable. Runs on `wasm`, the backend a
 * deployment without tfjs-node uses; the parity suites already tie `cpu` to facenet-pytorch.
 */
describeWithSharedData(
  'onnx and tfjs agree (same checkpoint, same frames)',
  ['models/upstream/pnet.pt', 'faces', REFERENCE, 'reference/crops'],
  () => {
    describeOnBackend('wasm', 'cross-runtime', () => {
      let work: string;
      let onnxDetector: FaceDetector;
      let tfjsDetector: FaceDetector;
      let onnxEmbedder: FaceEmbedder;
      let tfjsEmbedder: FaceEmbedder;
      let crops: RgbImage[];

      beforeAll(async () => {
        work = await mkdtemp(path.join(tmpdir(), 'facerec-tfjs-cross-'));
        const checkpoint = await writeSyntheticCheckpoint(
          sharedPath(REFERENCE),
          path.join(work, 'synthetic.pt'),
        );
        const store = await mirrorStore(path.join(work, 'cache'));
        const onnx = createOnnxProvider({ intraOpNumThreads: 2, modelStore: store });
        const tfjs = createTfjsProvider({ backend: 'wasm', modelStore: store, logger: quiet });
        onnxDetector = onnx.detector('mtcnn');
        tfjsDetector = tfjs.detector('mtcnn');
        [onnxEmbedder, tfjsEmbedder] = await Promise.all([
          onnx.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 8 }),
          tfjs.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 8 }),
        ]);
        const reference = await readSyntheticReference(sharedPath(REFERENCE));
        crops = await Promise.all(
          reference.embeddings.map(async (e) =>
            decodeImage(await readFile(sharedPath('reference', e.cropPng))),
          ),
        );
      });
      afterAll(async () => {
        await Promise.all([onnxDetector?.dispose(), tfjsDetector?.dispose()]);
        await Promise.all([onnxEmbedder?.dispose(), tfjsEmbedder?.dispose()]);
        if (work) await rm(work, { recursive: true, force: true });
      });

      it('give the same model id and weights hash', () => {
        expect(tfjsEmbedder.modelId).toBe(onnxEmbedder.modelId);
        expect(tfjsEmbedder.weightsSha256).toBe(onnxEmbedder.weightsSha256);
        expect(tfjsEmbedder.dimension).toBe(onnxEmbedder.dimension);
      });

      it('embed every reference crop alike (cosine ≥ 0.9999 each)', { timeout: 180_000 }, async () => {
        const [a, b] = [await onnxEmbedder.embed(crops), await tfjsEmbedder.embed(crops)];
        const cosines = a.map((v, i) => cosine(v, b[i]!));
        const min = Math.min(...cosines);
        console.log(
          `onnx vs tfjs wasm InceptionResnetV1 over ${crops.length} crops: min cosine ${min.toFixed(10)} ` +
            `(1 − cos = ${(1 - min).toExponential(2)})`,
        );
        for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9999);
      });

      it('detect the same faces (IoU ≥ 0.99, same order and count)', { timeout: 180_000 }, async () => {
        const ious: number[] = [];
        let worstScore = 0;
        let worstLandmark = 0;
        for (const parts of FRAMES) {
          const image = await decodeFace(...parts);
          const [a, b] = [await onnxDetector.detect(image), await tfjsDetector.detect(image)];
          expect(b.length, parts.join('/')).toBe(a.length);
          a.forEach((f, i) => {
            const g = b[i]!;
            ious.push(iou(f.box, g.box));
            worstScore = Math.max(worstScore, Math.abs(f.score - g.score));
            f.landmarks.forEach((p, k) => {
              worstLandmark = Math.max(
                worstLandmark,
                Math.hypot(p[0] - g.landmarks[k]![0], p[1] - g.landmarks[k]![1]),
              );
            });
          });
        }
        console.log(
          `onnx vs tfjs wasm MTCNN over ${FRAMES.length} frames, ${ious.length} faces: min IoU ` +
            `${Math.min(...ious).toFixed(6)}, max |Δscore| ${worstScore.toExponential(2)}, max landmark Δ ` +
            `${worstLandmark.toFixed(4)} px`,
        );
        for (const v of ious) expect(v).toBeGreaterThanOrEqual(0.99);
        expect(worstScore).toBeLessThanOrEqual(1e-3);
      });
    });
  },
);
