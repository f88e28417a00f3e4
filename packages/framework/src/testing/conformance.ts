import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaceDetection, FaceDetector } from '../contracts/detector.js';
import { EMBEDDER_PRECISIONS, type FaceEmbedder } from '../contracts/embedder.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { DisposedError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { cosine } from './vectors.js';

type Awaitable<T> = T | Promise<T>;

/** What {@link describeDetectorConformance} needs to exercise a detector. */
export interface DetectorConformanceOptions {
  /** Suite name, e.g. `onnx mtcnn`. */
  readonly name: string;
  /** Creates a fresh detector; the suite disposes it. */
  readonly create: () => Awaitable<FaceDetector>;
  /** Images that contain at least one face each, preferably of different sizes. */
  readonly imagesWithFaces: () => Awaitable<RgbImage[]>;
  /** An image with no face. */
  readonly imageWithoutFaces: () => Awaitable<RgbImage>;
  /** Tolerance for batch-versus-single comparisons, in pixels and score units. Default 1e-3. */
  readonly tolerance?: number;
}

/** What {@link describeEmbedderConformance} needs to exercise an embedder. */
export interface EmbedderConformanceOptions {
  readonly name: string;
  readonly create: () => Awaitable<FaceEmbedder>;
  /** At least two different face crops of the embedder's input size. */
  readonly faces: () => Awaitable<RgbImage[]>;
  /** Minimum cosine between an embedding computed alone and inside a batch. Default 0.9999. */
  readonly batchCosine?: number;
}

const area = (d: FaceDetection) => (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]);

function expectWellFormed(detection: FaceDetection): void {
  expect(detection.box).toHaveLength(4);
  for (const v of detection.box) expect(Number.isFinite(v)).toBe(true);
  expect(detection.box[2]).toBeGreaterThan(detection.box[0]);
  expect(detection.box[3]).toBeGreaterThan(detection.box[1]);
  expect(detection.score).toBeGreaterThanOrEqual(0);
  expect(detection.score).toBeLessThanOrEqual(1);
  expect(detection.landmarks).toHaveLength(5);
  for (const p of detection.landmarks) {
    expect(p).toHaveLength(2);
    expect(Number.isFinite(p[0]) && Number.isFinite(p[1])).toBe(true);
  }
}

function expectSameDetections(actual: FaceDetection[], expected: FaceDetection[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    a.box.forEach((v, k) => {
      expect(Math.abs(v - e.box[k]!)).toBeLessThanOrEqual(tolerance);
    });
    expect(Math.abs(a.score - e.score)).toBeLessThanOrEqual(tolerance);
    a.landmarks.forEach((p, k) => {
      expect(Math.abs(p[0] - e.landmarks[k]![0])).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(p[1] - e.landmarks[k]![1])).toBeLessThanOrEqual(tolerance);
    });
  });
}

/**
 * A value from a caller outside TypeScript's checks (JavaScript, parsed JSON), given where an `RgbImage` belongs:
 * what the runtime validation of every detector and embedder exists for.
 */
const fromUntypedCaller = (value: unknown): RgbImage => value as RgbImage;

const malformedImages = (): [string, RgbImage][] => [
  ['short pixel buffer', { width: 16, height: 16, data: new Uint8Array(10) }],
  ['zero width', { width: 0, height: 16, data: new Uint8Array(0) }],
  ['non-integer height', { width: 4, height: 2.5, data: new Uint8Array(30) }],
  // An image file where decoded pixels belong: its bytes, or its path.
  ['encoded bytes', fromUntypedCaller(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))],
  ['a path', fromUntypedCaller('face.jpg')],
];

/**
 * The conformance suite every {@link FaceDetector} implementation must pass: metadata, well-formed
 * detections sorted largest first, batch results equal to single-image results, typed errors on malformed
 * input, and `dispose`.
 *
 * @example
 * describeDetectorConformance({ name: 'onnx mtcnn', create: () => provider.detector('mtcnn'), ... });
 */
export function describeDetectorConformance(options: DetectorConformanceOptions): void {
  const tolerance = options.tolerance ?? 1e-3;
  describe(`FaceDetector conformance: ${options.name}`, { timeout: MODEL_TEST_TIMEOUT_MS }, () => {
    let detector: FaceDetector;
    let withFaces: RgbImage[];
    let without: RgbImage;
    beforeAll(async () => {
      detector = await options.create();
      withFaces = await options.imagesWithFaces();
      without = await options.imageWithoutFaces();
    }, MODEL_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await detector?.dispose();
    });

    it('declares its contract version, provider and model id', () => {
      expect(detector.specificationVersion).toBe(SPECIFICATION_VERSION);
      expect(detector.provider).toMatch(/\S/);
      expect(detector.modelId).toMatch(/\S/);
    });

    it('finds well-formed faces, largest first', async () => {
      expect(withFaces.length).toBeGreaterThan(0);
      for (const [n, image] of withFaces.entries()) {
        const faces = await detector.detect(image);
        expect(faces.length, `faces found in image ${n} (one with faces)`).toBeGreaterThan(0);
        faces.forEach(expectWellFormed);
        for (let i = 1; i < faces.length; i++)
          expect(
            area(faces[i - 1]!),
            `image ${n}: area of face ${i - 1} against face ${i} (largest first)`,
          ).toBeGreaterThanOrEqual(area(faces[i]!));
      }
    });

    it('finds no face where there is none', async () => {
      expect(await detector.detect(without), 'faces found in the image without faces').toEqual([]);
    });

    it('gives the same detections in a batch as one image at a time', async () => {
      const batch = [...withFaces, without, ...withFaces.slice(0, 1)];
      const batched = await detector.detectBatch(batch);
      expect(batched).toHaveLength(batch.length);
      for (let i = 0; i < batch.length; i++) {
        expectSameDetections(batched[i]!, await detector.detect(batch[i]!), tolerance);
      }
      expect(await detector.detectBatch([])).toEqual([]);
    });

    it('rejects malformed images with InvalidInputError', async () => {
      for (const [, image] of malformedImages()) {
        const error = await detector.detect(image).catch((e: unknown) => e);
        expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
        const batchError = await detector.detectBatch([withFaces[0]!, image]).catch((e: unknown) => e);
        expect(InvalidInputError.isInstance(batchError), String(batchError)).toBe(true);
      }
      // Bytes are said as such, with how to decode them (not "invalid dimensions undefined×undefined").
      const bytes = await detector.detect(malformedImages()[3]![1]).catch((e: unknown) => e);
      expect(String(bytes)).toMatch(/encoded bytes, not an RgbImage .*decodeImage/);
    });

    it('is ready once loaded, and a warm-up changes no result', async () => {
      await detector.ready();
      const before = await detector.detect(withFaces[0]!);
      await detector.warmUp({ width: 64, height: 48 });
      expectSameDetections(await detector.detect(withFaces[0]!), before, 0);
    });

    it("cuts crops only when asked, with the caller's crop policy", async () => {
      const [plain] = await detector.detectFaces([withFaces[0]!]);
      expect(plain!.crops).toEqual([]);
      for (const crop of [
        { size: { width: 160, height: 160 }, shape: 'box', margin: 0 },
        { size: { width: 150, height: 150 }, shape: 'square', margin: 10 },
      ] as const) {
        const [found] = await detector.detectFaces([withFaces[0]!], { crop });
        expectSameDetections(found!.faces, plain!.faces, 0);
        expect(found!.crops).toHaveLength(found!.faces.length);
        found!.crops.forEach((c, i) => {
          expect([c.image.width, c.image.height]).toEqual([crop.size.width, crop.size.height]);
          expect(c.image.data).toHaveLength(crop.size.width * crop.size.height * 3);
          expect(c.detection).toEqual(found!.faces[i]);
        });
      }
      const bad = { size: { width: 0, height: 0 }, shape: 'oval', margin: -1 } as never;
      const error = await detector.detectFaces([withFaces[0]!], { crop: bad }).catch((e: unknown) => e);
      expect(InvalidOptionsError.isInstance(error), String(error)).toBe(true);
    });

    it('rejects calls after dispose with DisposedError', async () => {
      const disposable = await options.create();
      await disposable.dispose();
      await disposable.dispose();
      const error = await disposable.detect(withFaces[0]!).catch((e: unknown) => e);
      expect(DisposedError.isInstance(error), String(error)).toBe(true);
      const ready = await disposable.ready().catch((e: unknown) => e);
      expect(DisposedError.isInstance(ready), String(ready)).toBe(true);
    });

    it('lets a call made before dispose() finish (a server stopping with requests in flight)', async () => {
      const disposable = await options.create();
      const expected = await detector.detect(withFaces[0]!);
      const pending = disposable.detect(withFaces[0]!);
      await disposable.dispose();
      expect((await pending).length).toBe(expected.length);
    });
  });
}

/**
 * Each test's and each setup's time limit in the model suites: real networks on a small machine (a detection
 * batch took 3.3 s on 2 cores; a first load may convert a checkpoint), well past vitest's default 5 s, so a
 * provider's project needs no vitest setting to run them.
 */
const MODEL_TEST_TIMEOUT_MS = 120_000;

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/**
 * The conformance suite every {@link FaceEmbedder} implementation must pass: metadata, unit-length vectors
 * of the declared dimension, order preserved, batch results equal to single results, typed errors on
 * crops of the wrong size, and `dispose`.
 */
export function describeEmbedderConformance(options: EmbedderConformanceOptions): void {
  const minCosine = options.batchCosine ?? 0.9999;
  describe(`FaceEmbedder conformance: ${options.name}`, { timeout: MODEL_TEST_TIMEOUT_MS }, () => {
    let embedder: FaceEmbedder;
    let faces: RgbImage[];
    beforeAll(async () => {
      embedder = await options.create();
      faces = await options.faces();
    }, MODEL_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await embedder?.dispose();
    });

    it('declares its contract version, model, dimension and preprocessing', () => {
      expect(embedder.specificationVersion).toBe(SPECIFICATION_VERSION);
      expect(embedder.provider).toMatch(/\S/);
      expect(embedder.modelId).toMatch(/\S/);
      expect(Number.isInteger(embedder.dimension) && embedder.dimension > 0).toBe(true);
      // Optional (absent means fp32); a gallery compares it with the precision its threshold was calibrated at.
      if (embedder.precision !== undefined)
        expect(EMBEDDER_PRECISIONS, 'the declared precision').toContain(embedder.precision);
      const { inputSize, std } = embedder.preprocessing;
      expect(inputSize.width).toBeGreaterThan(0);
      expect(inputSize.height).toBeGreaterThan(0);
      for (const s of std) expect(s).not.toBe(0);
      expect(faces.length).toBeGreaterThanOrEqual(2);
      for (const f of faces) expect([f.width, f.height]).toEqual([inputSize.width, inputSize.height]);
    });

    it('returns one unit-length vector of the declared dimension per face', async () => {
      const vectors = await embedder.embed(faces);
      expect(vectors, 'vectors for the faces given').toHaveLength(faces.length);
      for (const [i, v] of vectors.entries()) {
        expect(v, `vector ${i}`).toBeInstanceOf(Float32Array);
        expect(v, `vector ${i}'s length (the declared dimension)`).toHaveLength(embedder.dimension);
        expect(v.every(Number.isFinite), `vector ${i} has only finite values`).toBe(true);
        expect(Math.abs(norm(v) - 1), `vector ${i}: |L2 norm − 1| (norm ${norm(v)})`).toBeLessThan(1e-3);
      }
      expect(await embedder.embed([])).toEqual([]);
    });

    it('keeps order and gives the same vector alone as in a batch', async () => {
      const batch = await embedder.embed(faces);
      const reversed = await embedder.embed([...faces].reverse());
      for (let i = 0; i < faces.length; i++) {
        const single = (await embedder.embed([faces[i]!]))[0]!;
        expect(
          cosine(single, batch[i]!),
          `face ${i}: cosine between its vector embedded alone and in the batch`,
        ).toBeGreaterThanOrEqual(minCosine);
        expect(
          cosine(reversed[faces.length - 1 - i]!, batch[i]!),
          `face ${i}: cosine between its vector in the batch and in the reversed batch (order kept?)`,
        ).toBeGreaterThanOrEqual(minCosine);
      }
    });

    it('rejects crops of the wrong size or shape with InvalidInputError', async () => {
      const { width, height } = embedder.preprocessing.inputSize;
      const wrongSize: RgbImage = {
        width: width + 1,
        height,
        data: new Uint8Array((width + 1) * height * 3),
      };
      for (const bad of [wrongSize, ...malformedImages().map(([, image]) => image)]) {
        const error = await embedder.embed([faces[0]!, bad]).catch((e: unknown) => e);
        expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
      }
    });

    it('refuses a sparse array of crops (a hole is no face)', async () => {
      const sparse: RgbImage[] = [];
      sparse[1] = faces[0]!;
      const error = await embedder.embed(sparse).catch((e: unknown) => e);
      expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
      expect(String((error as Error).message)).toContain('face 0 is not an RgbImage');
    });

    it("names the slip of passing detectFaces' crops instead of their images", async () => {
      const crop = { detection: {}, cropBox: [0, 0, 1, 1], image: faces[0]! };
      // Called as plain JavaScript would call it: the types would refuse a FaceCrop here.
      const error = await Promise.resolve(Reflect.apply(embedder.embed, embedder, [[crop]])).catch(
        (e: unknown) => e,
      );
      expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
      expect(String((error as Error).message)).toContain('pass its .image');
    });

    it('rejects calls after dispose with DisposedError', async () => {
      const disposable = await options.create();
      await disposable.dispose();
      await disposable.dispose();
      const error = await disposable.embed(faces.slice(0, 1)).catch((e: unknown) => e);
      expect(DisposedError.isInstance(error), String(error)).toBe(true);
    });

    it('lets a call made before dispose() finish (a server stopping with requests in flight)', async () => {
      const disposable = await options.create();
      const pending = disposable.embed(faces.slice(0, 1));
      await disposable.dispose();
      const [embedding] = await pending;
      expect(embedding?.length).toBe(embedder.dimension);
    });
  });
}
