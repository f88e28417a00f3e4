import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Box, FaceDetection, FaceDetector } from '../contracts/detector.js';
import { EMBEDDER_PRECISIONS, type FaceEmbedder } from '../contracts/embedder.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { DisposedError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { extractFace } from '../mtcnn/extract.js';
import { iou } from './mtcnn-parity.js';
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
  /**
   * Where the faces of each image of {@link imagesWithFaces} are, roughly (a reference's boxes, or drawn by
   * hand): each must be found, at IoU ≥ 0.5 with one of the detector's boxes. Without it the suite checks only
   * that boxes are plausible, and a detector that puts them in the wrong place (forgetting to scale back from a
   * shrunken frame) passes.
   */
  readonly expectedFaces?: () => Awaitable<readonly (readonly Box[])[]>;
}

/** What {@link describeEmbedderConformance} needs to exercise an embedder. */
export interface EmbedderConformanceOptions {
  readonly name: string;
  readonly create: () => Awaitable<FaceEmbedder>;
  /** At least two different face crops of the embedder's input size (of different people, preferably). */
  readonly faces: () => Awaitable<RgbImage[]>;
  /** Minimum cosine between an embedding computed alone and inside a batch. Default 0.9999. */
  readonly batchCosine?: number;
}

const area = (d: FaceDetection) => (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]);

/** The smallest face box a detector may report, in pixels: no detector finds a face in fewer. */
const MIN_FACE_PIXELS = 4;

/** A copy of an image's bytes, to tell whether a call changed them. */
const bytesOf = (images: readonly RgbImage[]) => images.map((image) => Uint8Array.from(image.data));

/**
 * A detection of `image` that can be a face: finite numbers, a box of positive size that overlaps the image (it
 * may extend past its edges), a score in [0, 1], and five landmarks near the box (within one box size of it on
 * every side: a face's eyes, nose and mouth are inside its box, give or take a detector's regression).
 */
function expectWellFormed(detection: FaceDetection, image: RgbImage, where: string): void {
  const [x1, y1, x2, y2] = detection.box;
  expect(detection.box, `${where}: box`).toHaveLength(4);
  for (const v of detection.box)
    expect(Number.isFinite(v), `${where}: box ${detection.box} finite`).toBe(true);
  // In pixels: a box of 0–1 coordinates (normalised by the image's size) is the usual fault here.
  expect(x2 - x1, `${where}: box ${detection.box}, its width in pixels`).toBeGreaterThanOrEqual(
    MIN_FACE_PIXELS,
  );
  expect(y2 - y1, `${where}: box ${detection.box}, its height in pixels`).toBeGreaterThanOrEqual(
    MIN_FACE_PIXELS,
  );
  const overlaps = x1 < image.width && x2 > 0 && y1 < image.height && y2 > 0;
  expect(overlaps, `${where}: box ${detection.box} overlaps the ${image.width}×${image.height} image`).toBe(
    true,
  );
  expect(detection.score, `${where}: score`).toBeGreaterThanOrEqual(0);
  expect(detection.score, `${where}: score`).toBeLessThanOrEqual(1);
  expect(detection.landmarks, `${where}: landmarks`).toHaveLength(5);
  const [w, h] = [x2 - x1, y2 - y1];
  for (const [k, p] of detection.landmarks.entries()) {
    expect(p, `${where}: landmark ${k}`).toHaveLength(2);
    expect(Number.isFinite(p[0]) && Number.isFinite(p[1]), `${where}: landmark ${k} finite`).toBe(true);
    const near = p[0] >= x1 - w && p[0] <= x2 + w && p[1] >= y1 - h && p[1] <= y2 + h;
    expect(near, `${where}: landmark ${k} (${p}) within a box size of box ${detection.box}`).toBe(true);
  }
}

/** Mean absolute difference of two images' bytes (0–255). */
function meanAbsoluteDifference(a: RgbImage, b: RgbImage): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

/**
 * Crops of `detectFaces` may differ from the framework's `extractFace` by at most this mean absolute difference
 * (of 255): a provider may resample on its own, but a crop of another region, shape or size, or not of the
 * image, differs by tens.
 */
const CROP_TOLERANCE = 2;

/** What a rejection gave, for a failing assertion's message: the error, or what the call resolved to. */
function outcome(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return `the call resolved (to ${Array.isArray(value) ? `an array of ${value.length}` : typeof value}) instead of rejecting`;
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
    /** The images' bytes before any call: a change made the same way by every call shows against these. */
    let original: Uint8Array[];
    beforeAll(async () => {
      detector = await options.create();
      withFaces = await options.imagesWithFaces();
      without = await options.imageWithoutFaces();
      original = bytesOf(withFaces);
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
        faces.forEach((face, i) => {
          expectWellFormed(face, image, `image ${n}, face ${i}`);
        });
        for (let i = 1; i < faces.length; i++)
          expect(
            area(faces[i - 1]!),
            `image ${n}: area of face ${i - 1} against face ${i} (largest first)`,
          ).toBeGreaterThanOrEqual(area(faces[i]!));
      }
    });

    it.skipIf(!options.expectedFaces)(
      'finds the faces where they are (expectedFaces), when the caller says where',
      async () => {
        const expected = await options.expectedFaces!();
        expect(expected, 'expectedFaces: one list of boxes per image with faces').toHaveLength(
          withFaces.length,
        );
        for (const [n, boxes] of expected.entries()) {
          const found = await detector.detect(withFaces[n]!);
          for (const box of boxes) {
            const best = Math.max(0, ...found.map((f) => iou(f.box, box)));
            expect(
              best,
              `image ${n}: the best IoU of a face found with the expected box ${box}`,
            ).toBeGreaterThanOrEqual(0.5);
          }
        }
      },
    );

    it('leaves the images it is given unchanged', async () => {
      // Against the bytes before these calls, and before any: a change undone by the next call (a swap), and one
      // made the same way by every call, each show against one of them.
      const before = bytesOf(withFaces);
      await detector.detectBatch(withFaces);
      await detector.detectFaces(withFaces, {
        crop: { size: { width: 32, height: 32 }, shape: 'box', margin: 0 },
      });
      withFaces.forEach((image, n) => {
        expect(Buffer.compare(image.data, before[n]!), `image ${n}'s bytes after the calls`).toBe(0);
        expect(Buffer.compare(image.data, original[n]!), `image ${n}'s bytes against those first given`).toBe(
          0,
        );
      });
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
        expect(InvalidInputError.isInstance(error), outcome(error)).toBe(true);
        const batchError = await detector.detectBatch([withFaces[0]!, image]).catch((e: unknown) => e);
        expect(InvalidInputError.isInstance(batchError), outcome(batchError)).toBe(true);
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
      // Every shape, each compared with the framework's own cut of the same detection (extractFace).
      for (const crop of [
        { size: { width: 160, height: 160 }, shape: 'box', margin: 0 },
        { size: { width: 150, height: 150 }, shape: 'square', margin: 10 },
        { size: { width: 150, height: 150 }, shape: 'eyes-mouth', margin: 0 },
        { size: { width: 112, height: 112 }, shape: 'aligned', margin: 8 },
      ] as const) {
        const [found] = await detector.detectFaces([withFaces[0]!], { crop });
        expectSameDetections(found!.faces, plain!.faces, 0);
        expect(found!.crops, `${crop.shape} crops, one per face`).toHaveLength(found!.faces.length);
        found!.crops.forEach((c, i) => {
          const where = `${crop.shape} crop of face ${i}`;
          expect([c.image.width, c.image.height], `${where}: size`).toEqual([
            crop.size.width,
            crop.size.height,
          ]);
          expect(c.image.data, `${where}: bytes`).toHaveLength(crop.size.width * crop.size.height * 3);
          expect(c.detection, `${where}: its detection`).toEqual(found!.faces[i]);
          const expected = extractFace(withFaces[0]!, c.detection, crop).image;
          expect(
            meanAbsoluteDifference(c.image, expected),
            `${where}: mean absolute difference from extractFace's cut of the same detection (of 255)`,
          ).toBeLessThanOrEqual(CROP_TOLERANCE);
        });
      }
      const bad = { size: { width: 0, height: 0 }, shape: 'oval', margin: -1 } as never;
      const error = await detector.detectFaces([withFaces[0]!], { crop: bad }).catch((e: unknown) => e);
      expect(InvalidOptionsError.isInstance(error), outcome(error)).toBe(true);
    });

    it('rejects calls after dispose with DisposedError', async () => {
      const disposable = await options.create();
      await disposable.dispose();
      await disposable.dispose();
      const error = await disposable.detect(withFaces[0]!).catch((e: unknown) => e);
      expect(DisposedError.isInstance(error), outcome(error)).toBe(true);
      const ready = await disposable.ready().catch((e: unknown) => e);
      expect(DisposedError.isInstance(ready), outcome(ready)).toBe(true);
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

/**
 * The vectors of the suite's different faces must not all be closer than this cosine: an embedder whose vector
 * does not depend on its input (a constant, a vector of the crop's size only) gives 1 for every pair; two photos of
 * one person give about 0.8 with facenet.
 */
const DIFFERENT_FACES_COSINE = 0.999;

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
    /** The crops' bytes before any call (see the detector suite's). */
    let original: Uint8Array[];
    beforeAll(async () => {
      embedder = await options.create();
      faces = await options.faces();
      original = bytesOf(faces);
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
      const { inputSize, std, crop } = embedder.preprocessing;
      expect(inputSize.width).toBeGreaterThan(0);
      expect(inputSize.height).toBeGreaterThan(0);
      // The crop is what the network takes: a detector cuts it at this size.
      expect(crop.size, 'preprocessing.crop.size (the input size)').toEqual({
        width: inputSize.width,
        height: inputSize.height,
      });
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

    it('leaves the crops it is given unchanged', async () => {
      // As the detector suite's: against the bytes before this call, and before any.
      const before = bytesOf(faces);
      await embedder.embed(faces);
      faces.forEach((face, n) => {
        expect(Buffer.compare(face.data, before[n]!), `crop ${n}'s bytes after embed`).toBe(0);
        expect(Buffer.compare(face.data, original[n]!), `crop ${n}'s bytes against those first given`).toBe(
          0,
        );
      });
    });

    it('gives different faces different vectors (the vector depends on the face)', async () => {
      const vectors = await embedder.embed(faces);
      let lowest = 1;
      for (let i = 0; i < vectors.length; i++) {
        for (let j = i + 1; j < vectors.length; j++)
          lowest = Math.min(lowest, cosine(vectors[i]!, vectors[j]!));
      }
      expect(lowest, `the lowest cosine between the ${faces.length} faces' vectors`).toBeLessThan(
        DIFFERENT_FACES_COSINE,
      );
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
        expect(InvalidInputError.isInstance(error), outcome(error)).toBe(true);
      }
    });

    it('refuses a sparse array of crops (a hole is no face)', async () => {
      const sparse: RgbImage[] = [];
      sparse[1] = faces[0]!;
      const error = await embedder.embed(sparse).catch((e: unknown) => e);
      expect(InvalidInputError.isInstance(error), outcome(error)).toBe(true);
      expect(String((error as Error).message)).toContain('face 0 is not an RgbImage');
    });

    it("names the slip of passing detectFaces' crops instead of their images", async () => {
      const crop = { detection: {}, cropBox: [0, 0, 1, 1], image: faces[0]! };
      // Called as plain JavaScript would call it: the types would refuse a FaceCrop here.
      const error = await Promise.resolve(Reflect.apply(embedder.embed, embedder, [[crop]])).catch(
        (e: unknown) => e,
      );
      expect(InvalidInputError.isInstance(error), outcome(error)).toBe(true);
      expect(String((error as Error).message)).toContain('pass its .image');
    });

    it('rejects calls after dispose with DisposedError', async () => {
      const disposable = await options.create();
      await disposable.dispose();
      await disposable.dispose();
      const error = await disposable.embed(faces.slice(0, 1)).catch((e: unknown) => e);
      expect(DisposedError.isInstance(error), outcome(error)).toBe(true);
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
