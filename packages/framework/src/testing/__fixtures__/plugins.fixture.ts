/**
 * The conformance suites run on small plugins made for the purpose (no network, no weights): a well-behaved
 * detector and embedder, which must pass every test, and ones broken in one way each, which must fail the test
 * that guards against it. Run by `conformance.test.ts` in a vitest of its own (`vitest.fixture.config.ts`), whose
 * report it reads: a suite's test can only be shown to fail by running it.
 */
import { CallGate } from '../../call-gate.js';
import type { FaceDetection, FaceDetector, FiveLandmarks } from '../../contracts/detector.js';
import { assertRgbImage } from '../../contracts/validate.js';
import { SPECIFICATION_VERSION } from '../../contracts/version.js';
import { BaseEmbedder } from '../../embedder/base.js';
import type { RgbImage } from '../../image/types.js';
import { extractFace } from '../../mtcnn/extract.js';
import { describeDetectorConformance, describeEmbedderConformance } from '../conformance.js';
import { fakePreprocessing } from '../fakes.js';
import { seededRandom } from '../random.js';

function noise(width: number, height: number, seed: number): RgbImage {
  const random = seededRandom(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => random() * 256) };
}

/** One face in the middle of any image at least 64 pixels wide, with its landmarks inside the box. */
function faceOf(image: RgbImage): FaceDetection[] {
  if (image.width < 64) return [];
  const side = Math.min(image.width, image.height) / 2;
  const [x, y] = [(image.width - side) / 2, (image.height - side) / 2];
  const at = (u: number, v: number): [number, number] => [x + u * side, y + v * side];
  const landmarks = [at(0.3, 0.4), at(0.7, 0.4), at(0.5, 0.55), at(0.35, 0.75), at(0.65, 0.75)];
  return [{ box: [x, y, x + side, y + side], score: 0.99, landmarks: landmarks as FiveLandmarks }];
}

/** What a broken detector changes: the detections it finds, or the crops it cuts. */
interface DetectorFault {
  readonly faces?: (faces: FaceDetection[], image: RgbImage) => FaceDetection[];
  readonly crop?: (crop: RgbImage) => RgbImage;
  readonly ignoresPolicy?: boolean;
}

class FixtureDetector implements FaceDetector {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly provider = 'fixture';
  readonly modelId = 'fixture-detector';
  readonly #gate = new CallGate('fixture detector');
  readonly #fault: DetectorFault;

  constructor(fault: DetectorFault = {}) {
    this.#fault = fault;
  }

  async ready(): Promise<void> {
    this.#gate.assertOpen();
  }

  async warmUp(): Promise<void> {
    this.#gate.assertOpen();
  }

  async dispose(): Promise<void> {
    await this.#gate.close();
  }

  #find(image: RgbImage): FaceDetection[] {
    assertRgbImage(image);
    const faces = faceOf(image);
    return this.#fault.faces ? this.#fault.faces(faces, image) : faces;
  }

  detect(image: RgbImage): Promise<FaceDetection[]> {
    return this.#gate.run(async () => this.#find(image));
  }

  detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]> {
    return this.#gate.run(async () => images.map((image) => this.#find(image)));
  }

  detectFaces(...[images, options = {}]: Parameters<FaceDetector['detectFaces']>) {
    return this.#gate.run(async () => {
      const crop = options.crop;
      if (crop && !['box', 'square', 'eyes-mouth', 'aligned'].includes(crop.shape)) {
        const { InvalidOptionsError } = await import('../../errors.js');
        throw new InvalidOptionsError('fixture detector', `unknown crop shape ${String(crop.shape)}`);
      }
      return images.map((image) => {
        const faces = this.#find(image);
        if (!crop) return { faces, crops: [] };
        const policy = this.#fault.ignoresPolicy ? { ...crop, shape: 'box' as const, margin: 0 } : crop;
        const crops = faces.map((face) => {
          const cut = extractFace(image, face, policy);
          return this.#fault.crop ? { ...cut, image: this.#fault.crop(cut.image) } : cut;
        });
        return { faces, crops };
      });
    });
  }
}

/** 8 numbers per crop: the mean of each channel's values in its top and bottom halves, and of two diagonals. */
class FixtureEmbedder extends BaseEmbedder {
  readonly #constant: boolean;

  readonly #mutates: boolean;
  readonly #marks: boolean;

  constructor(fault: 'constant' | 'crop size' | 'mutates' | 'marks' | undefined = undefined) {
    const preprocessing = fakePreprocessing(16);
    super({
      provider: 'fixture',
      modelId: 'fixture-embedder',
      weightsSha256: undefined,
      dimension: 8,
      preprocessing:
        fault === 'crop size'
          ? { ...preprocessing, crop: { ...preprocessing.crop, size: { width: 20, height: 20 } } }
          : preprocessing,
    });
    this.#constant = fault === 'constant';
    this.#mutates = fault === 'mutates';
    this.#marks = fault === 'marks';
  }

  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    const out = new Float32Array(faces.length * 8);
    faces.forEach((face, n) => {
      // A network that wants BGR, the swap done in the caller's crop.
      if (this.#mutates)
        for (let i = 0; i < face.data.length; i += 3)
          [face.data[i], face.data[i + 2]] = [face.data[i + 2]!, face.data[i]!];
      if (this.#marks) face.data.set([255, 0, 0]);
      const v = out.subarray(n * 8, n * 8 + 8);
      if (this.#constant) {
        v[0] = 1;
        return;
      }
      const { width, height, data } = face;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const i = (y * width + x) * 3;
          const half = y < height / 2 ? 0 : 3;
          for (let c = 0; c < 3; c++) v[half + c]! += data[i + c]! - 127.5;
          if (x === y) v[6]! += data[i]! - 127.5;
          if (x === width - 1 - y) v[7]! += data[i + 1]! - 127.5;
        }
      }
      const norm = Math.hypot(...v);
      for (let k = 0; k < 8; k++) v[k]! /= norm;
    });
    return out;
  }

  protected release(): void {}
}

const images = () => [noise(160, 120, 1), noise(96, 200, 2), noise(300, 300, 3)];

const detectors: Record<string, DetectorFault> = {
  'good detector': {},
  'boxes outside the image': {
    faces: (faces, image) =>
      faces.map((f) => ({
        ...f,
        box: [f.box[0] + image.width + 500, f.box[1], f.box[2] + image.width + 500, f.box[3]],
        landmarks: f.landmarks.map(([x, y]) => [x + image.width + 500, y]) as unknown as FiveLandmarks,
      })),
  },
  'landmarks at the origin': {
    faces: (faces) => faces.map((f) => ({ ...f, landmarks: f.landmarks.map(() => [0, 0]) as never })),
  },
  'black crops': { crop: (c) => ({ ...c, data: new Uint8Array(c.data.length) }) },
  // Coordinates divided by the image's size (0–1), as some detectors' outputs are.
  'normalised coordinates': {
    faces: (faces, image) =>
      faces.map((f) => ({
        ...f,
        box: [
          f.box[0] / image.width,
          f.box[1] / image.height,
          f.box[2] / image.width,
          f.box[3] / image.height,
        ],
        landmarks: f.landmarks.map(([x, y]) => [
          x / image.width,
          y / image.height,
        ]) as unknown as FiveLandmarks,
      })),
  },
  // Found on a frame shrunk by half, and not scaled back.
  'half-scale boxes': {
    faces: (faces) =>
      faces.map((f) => ({
        ...f,
        box: f.box.map((v) => v / 2) as unknown as FaceDetection['box'],
        landmarks: f.landmarks.map(([x, y]) => [x / 2, y / 2]) as unknown as FiveLandmarks,
      })),
  },
  'crop policy ignored': { ignoresPolicy: true },
};

for (const [name, fault] of Object.entries(detectors)) {
  describeDetectorConformance({
    name,
    create: () => new FixtureDetector(fault),
    imagesWithFaces: images,
    imageWithoutFaces: () => noise(32, 32, 4),
    expectedFaces: () => images().map((image) => faceOf(image).map((f) => f.box)),
  });
}

for (const [name, fault] of [
  ['good embedder', undefined],
  ['constant embedder', 'constant'],
  ['crop size unlike the input size', 'crop size'],
  ['embedder changing its input', 'mutates'],
  // The same change at every call: before and after a later call are equal, the bytes first given are not.
  ['embedder marking its input', 'marks'],
] as const) {
  describeEmbedderConformance({
    name,
    create: () => new FixtureEmbedder(fault),
    faces: () => [noise(16, 16, 5), noise(16, 16, 6), noise(16, 16, 7)],
  });
}
