import { readFile } from 'node:fs/promises';
import {
  CheckpointError,
  DisposedError,
  decodeImage,
  InvalidInputError,
  type ModelStore,
  type RgbImage,
} from '@facerec/framework';
import {
  FACEAPI_MEAN_RGB,
  faceApiInput,
  prepareFaceApiInput,
  readTfjsWeightsFile,
} from '@facerec/framework/internal';
import { describeEmbedderConformance, describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { buildFaceApiResnet, createSession, OnnxFaceApiEmbedder } from '@facerec/provider-onnx';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

const decode = async (...parts: string[]): Promise<RgbImage> =>
  decodeImage(await readFile(sharedPath('faces', 'face-api.js', ...parts)));
const reference = async (name: string): Promise<number[]> =>
  JSON.parse(await readFile(sharedPath('reference', 'face-api.js', name), 'utf8')) as number[];

const distance = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
};
/** @vladmandic/face-api's own descriptors (see __fixtures__/generate-tfjs-descriptors.mjs). */
const tfjsReference = async () =>
  JSON.parse(
    await readFile(new URL('../src/faceapi/__fixtures__/tfjs-descriptors.json', import.meta.url), 'utf8'),
  ) as { pixelDivisor: number; descriptors: Record<string, number[]> };
const norm = (a: ArrayLike<number>) => distance(a, new Float32Array(a.length));

const FIXTURES = [
  ['face1.png', 'faceDescriptor1.json'],
  ['face2.png', 'faceDescriptor2.json'],
  ['face_rectangular.png', 'faceDescriptorRect.json'],
] as const;

describeWithSharedData(
  'onnx face-api.js recognition net',
  ['faces/face-api.js/test', 'faces/face-api.js/bbt', 'reference/face-api.js'],
  () => {
    let store: ModelStore;
    let embedder: OnnxFaceApiEmbedder;
    beforeAll(async () => {
      store = await mirrorStore();
      embedder = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 2, maxBatchSize: 4 });
    });
    afterAll(async () => {
      await embedder?.dispose();
    });

    it("matches face-api.js's reference descriptors for whole images (Euclidean < 0.05; face-api.js accepts 0.1)", async () => {
      const images = await Promise.all(FIXTURES.map(([image]) => decode('test', image)));
      const descriptors = await embedder.computeFaceDescriptors(images);
      for (const [i, [image, json]] of FIXTURES.entries()) {
        const d = distance(descriptors[i]!, await reference(json));
        console.log(
          `face-api.js fixture ${image}: distance ${d.toFixed(4)}, |descriptor| ${norm(descriptors[i]!).toFixed(3)}`,
        );
        expect(descriptors[i]).toHaveLength(128);
        expect(d).toBeLessThan(0.05);
      }
    });

    it("equals @vladmandic/face-api's own tfjs output to float precision, pad/resize included", async () => {
      // That build divides by 255 rather than 256, so the graph is fed its normalisation directly here.
      const graph = await createSession(embedder.graph.bytes ?? embedder.graph.path, {
        intraOpNumThreads: 2,
      });
      const size = 150;
      const { pixelDivisor, descriptors } = await tfjsReference();
      for (const [image, expected] of Object.entries(descriptors)) {
        const input = faceApiInput(await decode(...image.split('/')));
        const x = new Float32Array(3 * size * size);
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < size * size; i++) {
            x[c * size * size + i] = (input.data[3 * i + c]! - FACEAPI_MEAN_RGB[c]!) / pixelDivisor;
          }
        }
        const { descriptor } = await graph.run({ input: new ort.Tensor('float32', x, [1, 3, size, size]) });
        const got = descriptor!.data as Float32Array;
        const worst = Math.max(...got.map((v, k) => Math.abs(v - expected[k]!)));
        console.log(`tfjs parity ${image}: max |Δ| ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-5);
      }
      await graph.release();
    });

    it('embed() returns the normalised descriptor; 8-bit crops stay close to the float input', async () => {
      const image = await decode('test', 'face_rectangular.png');
      const [raw] = await embedder.computeFaceDescriptors([image]);
      const crop = prepareFaceApiInput(image);
      const [fromCrop] = await embedder.describe([crop]);
      const [unit] = await embedder.embed([crop]);
      expect(distance(raw!, fromCrop!)).toBeLessThan(0.01);
      expect(norm(unit!)).toBeCloseTo(1, 5);
      const scaled = fromCrop!.map((v) => v / norm(fromCrop!));
      expect(distance(unit!, scaled)).toBeLessThan(1e-5);
    });

    it('puts the same person closer than different people (bbt)', async () => {
      const names = ['amy/amy1.png', 'amy/amy2.png', 'amy/amy3.png', 'sheldon/sheldon1.png', 'raj/raj1.png'];
      const faces = await Promise.all(names.map((n) => decode('bbt', ...n.split('/'))));
      const raw = await embedder.describe(faces);
      const unit = await embedder.embed(faces);
      const d = (i: number, j: number, v: Float32Array[]) => distance(v[i]!, v[j]!);
      const pairs: [number, number][] = [
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [3, 4],
      ];
      for (const [i, j] of pairs) {
        console.log(
          `bbt ${names[i]} vs ${names[j]}: raw ${d(i, j, raw).toFixed(3)}, normalised ${d(i, j, unit).toFixed(3)}`,
        );
      }
      const same = Math.max(d(0, 1, raw), d(0, 2, raw));
      const different = Math.min(d(0, 3, raw), d(0, 4, raw), d(3, 4, raw));
      expect(same).toBeLessThan(0.6);
      expect(different).toBeGreaterThan(0.6);
      expect(same).toBeLessThan(different);
    });

    it('builds the graph once per weights file and reuses the cached .onnx', async () => {
      expect(embedder.graph.built).toBe(true);
      expect(embedder.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
      const again = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 1, maxBatchSize: 1 });
      expect(again.graph.built).toBe(false);
      expect(again.graph.path).toBe(embedder.graph.path);
      expect(again.graph.path).toContain(`faceapi-resnet-${embedder.weightsSha256!.slice(0, 16)}`);
      const face = await decode('bbt', 'amy', 'amy1.png');
      expect(await again.embed([face])).toEqual(await embedder.embed([face]));
      const malformed = { width: 10, height: 10, data: new Uint8Array(3) };
      const bad = await again.computeFaceDescriptors([face, malformed]).catch((e: unknown) => e);
      expect(InvalidInputError.isInstance(bad), String(bad)).toBe(true);
      expect(String(bad)).toMatch(/image 1/);
      await again.dispose();
      const disposed = await again.computeFaceDescriptors([face]).catch((e: unknown) => e);
      expect(DisposedError.isInstance(disposed), String(disposed)).toBe(true);
    });

    it('refuses weights that are not the recognition net with CheckpointError', async () => {
      const manifestPath = await store.resolve('faceapi-face-recognition-manifest');
      const weights = new Map(await readTfjsWeightsFile(manifestPath));
      const missing = new Map(weights);
      missing.delete('conv128_1/conv2/scale/biases');
      expect(() => buildFaceApiResnet(missing, { source: 'x.json' })).toThrow(CheckpointError);
      expect(() => buildFaceApiResnet(missing, { source: 'x.json' })).toThrow(
        /missing weight "conv128_1\/conv2\/scale\/biases"/,
      );
      const extra = new Map(weights).set('extra', weights.get('fc')!);
      expect(() => buildFaceApiResnet(extra)).toThrow(/unexpected key "extra"/);
      const wrong = new Map(weights).set('fc', { ...weights.get('fc')!, shape: [128, 256] });
      expect(() => buildFaceApiResnet(wrong)).toThrow(/"fc" has shape \[128, 256\], expected \[256, 128\]/);
    });

    describe('batching', () => {
      it('gives the same descriptors in batches split by maxBatchSize as one by one', async () => {
        const names = ['amy/amy1.png', 'amy/amy2.png', 'amy/amy3.png', 'amy/amy4.png', 'penny/penny1.png'];
        const faces = await Promise.all(names.map((n) => decode('bbt', ...n.split('/'))));
        const batch = await embedder.describe(faces); // maxBatchSize 4: chunks of 4 and 1
        for (const [i, face] of faces.entries()) {
          const [single] = await embedder.describe([face]);
          expect(distance(single!, batch[i]!)).toBeLessThan(1e-4);
        }
      });
    });
  },
);

describeWithSharedData(
  'onnx face-api.js recognition net: FaceEmbedder contract',
  ['faces/face-api.js/bbt'],
  () => {
    describeEmbedderConformance({
      name: 'onnx faceapi-resnet',
      create: async () =>
        OnnxFaceApiEmbedder.load(await mirrorStore(), { intraOpNumThreads: 2, maxBatchSize: 2 }),
      faces: async () =>
        Promise.all(
          ['amy/amy1.png', 'amy/amy2.png', 'sheldon/sheldon1.png'].map((n) => decode('bbt', ...n.split('/'))),
        ),
    });
  },
);
