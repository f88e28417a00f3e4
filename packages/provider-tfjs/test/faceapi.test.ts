import { readFile } from 'node:fs/promises';
import {
  DisposedError,
  decodeImage,
  type FaceEmbedder,
  InvalidInputError,
  InvalidOptionsError,
  type ModelStore,
  type RgbImage,
} from '@facerec/framework';
import { faceApiInput } from '@facerec/framework/internal';
import {
  describeEmbedderConformance,
  describeWithSharedData,
  sharedMirrorStore,
  sharedPath,
} from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { createTfjsProvider, type TfjsFaceApiEmbedder } from '@facerec/provider-tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cosine, describeOnBackend, quiet, TEST_BACKENDS } from './helpers.js';

// The cpu backend on a busy 2-core machine needs more than the default 60 s per test.
vi.setConfig({ testTimeout: 240_000 });

const decode = async (...parts: string[]): Promise<RgbImage> =>
  decodeImage(await readFile(sharedPath('faces', 'face-api.js', ...parts)));
const reference = async (name: string): Promise<number[]> =>
  JSON.parse(await readFile(sharedPath('reference', 'face-api.js', name), 'utf8')) as number[];
const distance = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

const BBT = ['amy/amy1.png', 'amy/amy2.png', 'sheldon/sheldon1.png'] as const;
const bbtFaces = (count: number) =>
  Promise.all(BBT.slice(0, count).map((n) => decode('bbt', ...n.split('/'))));

const FIXTURES = [
  ['face1.png', 'faceDescriptor1.json'],
  ['face2.png', 'faceDescriptor2.json'],
  ['face_rectangular.png', 'faceDescriptorRect.json'],
] as const;

/** The cpu backend is pure JavaScript (several seconds a face): two bbt faces and only the suites there. */
const FACES = { wasm: 3, cpu: 2 } as const;

describeWithSharedData(
  'tfjs face-api.js recognition net',
  ['faces/face-api.js/test', 'faces/face-api.js/bbt', 'reference/face-api.js'],
  () => {
    for (const backend of TEST_BACKENDS) {
      describeOnBackend(backend, 'tfjs faceapi-resnet', () => {
        describeEmbedderConformance({
          name: `tfjs ${backend} faceapi-resnet`,
          // maxBatchSize smaller than the suite's batches, so they are split into uneven chunks.
          create: async () =>
            createTfjsProvider({ backend, modelStore: await sharedMirrorStore(), logger: quiet }).embedder(
              'faceapi-resnet',
              { maxBatchSize: 2 },
            ),
          faces: () => bbtFaces(FACES[backend]),
        });

        if (backend !== 'wasm') return;

        let store: ModelStore;
        let tfjs: TfjsFaceApiEmbedder;
        let onnx: FaceEmbedder & { describe(inputs: readonly RgbImage[]): Promise<Float32Array[]> };
        beforeAll(async () => {
          store = await sharedMirrorStore();
          tfjs = (await createTfjsProvider({ backend, modelStore: store, logger: quiet }).embedder(
            'faceapi-resnet',
            { maxBatchSize: 4 },
          )) as TfjsFaceApiEmbedder;
          onnx = (await createOnnxProvider({ intraOpNumThreads: 2, modelStore: store }).embedder(
            'faceapi-resnet',
          )) as typeof onnx;
        });
        afterAll(async () => {
          await Promise.all([tfjs?.dispose(), onnx?.dispose()]);
        });

        it('declares the onnx embedder’s model id, weights and dimension, NHWC', () => {
          expect(tfjs.provider).toBe('tfjs');
          expect(tfjs.modelId).toBe(onnx.modelId);
          expect(tfjs.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
          expect(tfjs.weightsSha256).toBe(onnx.weightsSha256);
          expect(tfjs.dimension).toBe(128);
          expect(tfjs.preprocessing).toEqual({ ...onnx.preprocessing, layout: 'NHWC' });
        });

        it('embeds the bbt faces as the onnx provider does (cosine ≥ 0.9999, max |Δ| ≤ 1e-4)', async () => {
          const faces = await bbtFaces(3);
          const [a, b] = [await onnx.embed(faces), await tfjs.embed(faces)];
          for (const [i, name] of BBT.entries()) {
            const c = cosine(a[i]!, b[i]!);
            const d = maxAbsDiff(a[i]!, b[i]!);
            console.log(
              `onnx vs tfjs ${backend} faceapi-resnet ${name}: cosine ${c.toFixed(10)}, max |Δ| ${d.toExponential(2)}`,
            );
            expect(c).toBeGreaterThanOrEqual(0.9999);
            expect(d).toBeLessThanOrEqual(1e-4);
          }
          const [rawA, rawB] = [await onnx.describe(faces), await tfjs.describe(faces)];
          for (let i = 0; i < faces.length; i++) expect(maxAbsDiff(rawA[i]!, rawB[i]!)).toBeLessThan(1e-4);
        });

        it("matches face-api.js's reference descriptors (Euclidean < 0.1)", async () => {
          const images = await Promise.all(FIXTURES.map(([image]) => decode('test', image)));
          const raw = await tfjs.describe(images.map(faceApiInput));
          const whole = await tfjs.computeFaceDescriptors(images);
          for (const [i, [image, json]] of FIXTURES.entries()) {
            const d = distance(raw[i]!, await reference(json));
            console.log(
              `face-api.js fixture ${image} (tfjs ${backend}): distance ${d.toFixed(4)}, ` +
                `|descriptor| ${distance(raw[i]!, new Float32Array(128)).toFixed(3)}`,
            );
            expect(raw[i]).toHaveLength(128);
            expect(d).toBeLessThan(0.1);
            expect(maxAbsDiff(whole[i]!, raw[i]!)).toBe(0);
          }
        });

        it('frees every intermediate tensor, and its weights on dispose', async () => {
          const faces = await bbtFaces(3);
          await tfjs.describe(faces);
          const before = tf.memory().numTensors;
          for (let i = 0; i < 3; i++) await tfjs.embed(faces);
          expect(tf.memory().numTensors).toBe(before);
          const extra = (await createTfjsProvider({ backend, modelStore: store, logger: quiet }).embedder(
            'faceapi-resnet',
          )) as TfjsFaceApiEmbedder;
          expect(tf.memory().numTensors).toBeGreaterThan(before);
          await extra.dispose();
          expect(tf.memory().numTensors).toBe(before);
        });

        it('rejects unknown options and non-150×150 inputs; describe fails after dispose', async () => {
          const provider = createTfjsProvider({ backend, modelStore: store, logger: quiet });
          const bad = await provider
            .embedder('faceapi-resnet', { weights: 'vggface2' } as never)
            .catch((e: unknown) => e);
          expect(InvalidOptionsError.isInstance(bad), String(bad)).toBe(true);
          const zero = await provider
            .embedder('faceapi-resnet', { maxBatchSize: 0 })
            .catch((e: unknown) => e);
          expect(InvalidOptionsError.isInstance(zero), String(zero)).toBe(true);

          const wrong = { width: 160, height: 160, data: new Uint8Array(160 * 160 * 3) };
          const error = await tfjs.describe([wrong]).catch((e: unknown) => e);
          expect(InvalidInputError.isInstance(error), String(error)).toBe(true);

          const again = (await provider.embedder('faceapi-resnet', {
            maxBatchSize: 1,
          })) as TfjsFaceApiEmbedder;
          await again.dispose();
          const disposed = await again.describe(await bbtFaces(1)).catch((e: unknown) => e);
          expect(DisposedError.isInstance(disposed), String(disposed)).toBe(true);
        });
      });
    }
  },
);
