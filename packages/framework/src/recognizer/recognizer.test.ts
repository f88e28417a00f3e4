import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FaceDetection } from '../contracts/detector.js';
import { BaseEmbedder, EmbedderOutputError } from '../embedder/base.js';
import { DisposedError, InvalidOptionsError } from '../errors.js';
import { EmbedderMismatchError } from '../gallery/errors.js';
import { FileGallery } from '../gallery/gallery.js';
import { encodePng } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { createFaceProvider } from '../registry/provider.js';
import { MODELS } from '../registry/registry.js';
import { fakeDetector, fakeEmbedderDescription, fakePreprocessing } from '../testing/fakes.js';
import { NoFaceError } from './errors.js';
import { createFaceRecognizer } from './recognizer.js';

const PRE = fakePreprocessing(8);

/** Embeds a crop as its normalised mean colour (plus a constant), so colours are identities. */
class ColourEmbedder extends BaseEmbedder {
  batches: number[] = [];
  released = 0;
  output: 'ok' | 'short' | 'nan' | 'zero' | 'unnormalised' = 'ok';
  constructor(maxBatchSize?: number, modelId = 'colour', precision?: 'fp32' | 'int8') {
    super({
      provider: 'test',
      modelId,
      weightsSha256: undefined,
      dimension: 4,
      preprocessing: PRE,
      precision,
      maxBatchSize,
    });
  }
  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    this.batches.push(faces.length);
    const out = new Float32Array(faces.length * 4);
    faces.forEach((face, f) => {
      const sum = [0, 0, 0];
      for (let i = 0; i < face.data.length; i++) sum[i % 3]! += face.data[i]!;
      const v = [...sum.map((x) => x / (face.data.length / 3) / 255), 0.5];
      const n = Math.hypot(...v);
      v.forEach((x, i) => {
        out[f * 4 + i] = x / n;
      });
    });
    if (this.output === 'short') return out.subarray(1);
    if (this.output === 'nan') out[0] = Number.NaN;
    if (this.output === 'zero') out.fill(0, this.dimension);
    if (this.output === 'unnormalised') for (let i = 0; i < out.length; i++) out[i]! *= 3;
    return out;
  }
  protected release(): void {
    this.released++;
  }
}

const frame = (rgb: [number, number, number], size = 40): RgbImage => {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3]!;
  return { width: size, height: size, data };
};

/** One face (the middle of the frame) unless the frame is black; two faces for a 60-px frame. */
const detector = fakeDetector(faces);
function faces(image: RgbImage): FaceDetection[] {
  if (image.data.every((v) => v === 0)) return [];
  const face = (x: number, side: number): FaceDetection => ({
    box: [x, 10, x + side, 10 + side],
    score: 0.99,
    landmarks: [
      [x, 10],
      [x, 10],
      [x, 10],
      [x, 10],
      [x, 10],
    ],
  });
  return image.width === 60 ? [face(30, 20), face(5, 10)] : [face(10, 20)];
}

const FAKE = fakeEmbedderDescription<{ maxBatchSize?: number }>({
  id: 'colour',
  options: z.strictObject({ maxBatchSize: z.number().optional() }),
  dimension: 4,
  preprocessing: PRE,
  thresholds: { euclidean: { value: 0.1, measuredOn: 'nothing' } },
  load: async ({ maxBatchSize }) => new ColourEmbedder(maxBatchSize),
});
/** The same double registered without a threshold, and why. */
const UNMEASURED = fakeEmbedderDescription<{ maxBatchSize?: number }>({
  id: 'unmeasured',
  options: z.strictObject({ maxBatchSize: z.number().optional() }),
  dimension: 4,
  preprocessing: PRE,
  thresholdsMissingReason: 'its weights were never measured',
  load: async ({ maxBatchSize }) => new ColourEmbedder(maxBatchSize, 'unmeasured'),
});
const provider = createFaceProvider({
  name: 'test',
  registry: MODELS.with(FAKE, UNMEASURED),
  detectors: [],
  embedders: [],
});

describe('createFaceRecognizer', () => {
  it('embeds every face with the crop its embedder asks for, from pixels or file bytes', async () => {
    const recognizer = await createFaceRecognizer({ provider, detector, embedder: 'colour' });
    const red = await recognizer.embed(frame([200, 0, 0]));
    expect(red).toHaveLength(1);
    expect(red[0]!.embedding).toHaveLength(4);
    const fromBytes = await recognizer.embed(await encodePng(frame([200, 0, 0])));
    expect(fromBytes[0]!.embedding).toEqual(red[0]!.embedding);
    // The ArrayBuffer of fetch(…).arrayBuffer() is file bytes too.
    const png = await encodePng(frame([200, 0, 0]));
    const buffer = png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer;
    expect((await recognizer.embed(buffer))[0]!.embedding).toEqual(red[0]!.embedding);
    expect(await recognizer.embed(frame([0, 0, 0]))).toEqual([]);
    expect(await recognizer.detect(frame([1, 2, 3], 60))).toHaveLength(2);
  });

  it('verifies the largest face of each photo with the registry threshold, or a given one', async () => {
    const recognizer = await createFaceRecognizer({ provider, detector, embedder: 'colour' });
    const same = await recognizer.verify(frame([200, 10, 10]), frame([201, 10, 10], 60));
    expect(same).toMatchObject({
      verified: true,
      threshold: 0.1,
      thresholdSource: 'registry',
      metric: 'euclidean',
      embedder: 'colour',
      precision: 'fp32',
      faceCounts: [1, 2],
    });
    expect(same.faces[1].box).toEqual([30, 10, 50, 30]); // the larger of the two
    expect(same.warnings).toEqual([
      'the second photo shows 2 faces; compared the largest, at [30, 10, 50, 30]',
    ]);
    const other = await recognizer.verify(frame([200, 10, 10]), frame([10, 10, 200]));
    expect([other.verified, other.warnings]).toEqual([false, []]);
    // Hand-computed: (200,10,10)/255 and (10,10,200)/255 with the constant 0.5, normalised, 4-d.
    const unit = (v: number[]) => v.map((x) => x / Math.hypot(...v));
    const [p, q] = [unit([200 / 255, 10 / 255, 10 / 255, 0.5]), unit([10 / 255, 10 / 255, 200 / 255, 0.5])];
    expect(other.distance).toBeCloseTo(Math.hypot(...p.map((x, i) => x - q[i]!)), 5);
    const strict = await recognizer.verify(frame([200, 10, 10]), frame([201, 10, 10]), { threshold: 0 });
    expect([strict.verified, strict.thresholdSource]).toEqual([false, 'option']);
    await expect(
      recognizer.verify(frame([200, 10, 10]), frame([201, 10, 10]), { threshold: -1 }),
    ).rejects.toThrow('verify: threshold must be a finite number ≥ 0 (a distance), got -1');
    await expect(recognizer.verify(frame([0, 0, 0]), frame([1, 1, 1]))).rejects.toThrow(NoFaceError);
    await expect(recognizer.verify(frame([1, 1, 1]), frame([0, 0, 0]))).rejects.toThrow(
      'no face found in the second photo',
    );
    const named = recognizer.verify(frame([1, 1, 1]), frame([0, 0, 0]), { names: ['a.jpg', 'black.png'] });
    await expect(named).rejects.toMatchObject({ code: 'NO_FACE', photo: 'black.png' });
  });

  it('refuses verification when no threshold is known, naming why and the ways to give one', async () => {
    const unregistered = new ColourEmbedder(undefined, 'nowhere');
    const recognizer = await createFaceRecognizer({ provider, detector, embedder: unregistered });
    await expect(recognizer.verify(frame([1, 1, 1]), frame([1, 1, 1]))).rejects.toThrow(
      /no euclidean threshold is known for nowhere: pass \{ threshold \}, or a calibrated gallery/,
    );
    const unmeasured = await createFaceRecognizer({ provider, detector, embedder: 'unmeasured' });
    await expect(unmeasured.verify(frame([1, 1, 1]), frame([1, 1, 1]))).rejects.toThrow(
      'no euclidean threshold is known for unmeasured (its weights were never measured)',
    );
    // The registry is found from the model id, so an embedder passed in gets its threshold too.
    const mine = await createFaceRecognizer({ provider, detector, embedder: new ColourEmbedder() });
    expect((await mine.verify(frame([1, 1, 1]), frame([1, 1, 1]))).thresholdSource).toBe('registry');
  });

  it('matches a never-calibrated gallery (threshold 0) at the registry threshold, and says so', async () => {
    const embedder = new ColourEmbedder();
    const [red, blue] = await embedder.embed([frame([200, 0, 0], 8), frame([0, 0, 200], 8)]);
    const identities = [
      { name: 'red', examples: [{ source: 'r', embedding: red! }] },
      { name: 'blue', examples: [{ source: 'b', embedding: blue! }] },
    ];
    const raw = FileGallery.create({ embedder, identities });
    const recognizer = await createFaceRecognizer({ provider, detector, embedder, gallery: raw });
    const [answer] = await recognizer.recognize(frame([190, 5, 5]));
    expect(answer).toMatchObject({ identity: 'red', threshold: 0.1, thresholdSource: 'registry' });
    const [forced] = await recognizer.recognize(frame([190, 5, 5]), { threshold: 0 });
    expect(forced).toMatchObject({ identity: 'unknown', threshold: 0, thresholdSource: 'option' });
    expect((await recognizer.verify(frame([9, 9, 9]), frame([9, 9, 9]))).thresholdSource).toBe('registry');

    // No registry threshold either: the gallery's 0 stands, so every face is unknown.
    const other = new ColourEmbedder(undefined, 'unmeasured');
    const bare = FileGallery.create({ embedder: other, identities });
    const none = await createFaceRecognizer({ provider, detector, embedder: other, gallery: bare });
    expect((await none.recognize(frame([190, 5, 5])))[0]).toMatchObject({
      identity: 'unknown',
      threshold: 0,
      thresholdSource: 'gallery',
    });
    // Said once, at creation, with what to do; the warning-free recognizer above had a registry threshold.
    expect(recognizer.warnings).toEqual([]);
    expect(none.warnings).toEqual([
      'no euclidean threshold is known for unmeasured (its weights were never measured) and the gallery was ' +
        'never calibrated (threshold 0), so every face will be "unknown" unless recognize is given ' +
        '{ threshold }: calibrate the gallery (calibrateThresholdLeaveOneOut, facerec gallery calibrate)',
    ]);
    expect((await none.recognize(frame([190, 5, 5]), { threshold: 0.1 }))[0]!.identity).toBe('red');
    // A gallery given a threshold by hand needs none from the registry.
    const set = await createFaceRecognizer({
      provider,
      detector,
      embedder: other,
      gallery: bare.withThreshold(0.1),
    });
    expect(set.warnings).toEqual([]);
  });

  it('recognizes against a gallery of the same embedder, and refuses another', async () => {
    const embedder = new ColourEmbedder();
    const [red, blue] = await embedder.embed([frame([200, 0, 0], 8), frame([0, 0, 200], 8)]);
    const gallery = FileGallery.create({
      embedder,
      threshold: 0.2,
      identities: [
        { name: 'red', examples: [{ source: 'r', embedding: red! }] },
        { name: 'blue', examples: [{ source: 'b', embedding: blue! }] },
      ],
    });
    const recognizer = await createFaceRecognizer({ provider, detector, embedder, gallery });
    const [answer] = await recognizer.recognize(frame([190, 5, 5]), { topK: 2 });
    expect(answer).toMatchObject({ identity: 'red', threshold: 0.2, thresholdSource: 'gallery' });
    expect(answer!.candidates.map((c) => c.identity)).toEqual(['red', 'blue']);
    expect((await recognizer.recognize(frame([90, 90, 90])))[0]!.identity).toBe('unknown');
    const verified = await recognizer.verify(frame([200, 0, 0]), frame([200, 0, 0]));
    expect(verified.thresholdSource).toBe('gallery');

    const other = FileGallery.create({ embedder: { ...embedder, modelId: 'other' }, identities: [] });
    await expect(createFaceRecognizer({ provider, detector, embedder, gallery: other })).rejects.toThrow(
      EmbedderMismatchError,
    );
    const none = await createFaceRecognizer({ provider, detector, embedder });
    await expect(none.recognize(frame([1, 1, 1]))).rejects.toThrow(
      'createFaceRecognizer was given no gallery',
    );

    // Neither bytes nor pixels: named as what a photo may be.
    await expect(recognizer.recognize('photo.jpg' as never)).rejects.toThrow(
      'the photo is a string (a path?), not file bytes or an RgbImage: pass await readImageFile(path)',
    );
    await expect(recognizer.detect(null as never)).rejects.toThrow(
      'the photo is null, not file bytes (a Uint8Array or ArrayBuffer) or an RgbImage',
    );

    // Options are checked before any detection, in recognize's name.
    const calls = embedder.batches.length;
    await expect(recognizer.recognize(frame([190, 5, 5]), { topK: 0 })).rejects.toThrow(/^recognize: topK: /);
    await expect(recognizer.recognize(frame([190, 5, 5]), { threshold: Number.NaN })).rejects.toThrow(
      /^recognize: threshold: /,
    );
    expect(embedder.batches.length).toBe(calls);

    // A gallery of no one: said once, and every face is unknown at distance Infinity.
    const empty = FileGallery.create({ embedder, threshold: 0.2, identities: [] });
    const lonely = await createFaceRecognizer({ provider, detector, embedder, gallery: empty });
    expect(lonely.warnings).toEqual([
      'the gallery holds no identities yet, so every face will be "unknown" at distance Infinity (add some to it: addFacesFromPhotos)',
    ]);
    expect((await lonely.recognize(frame([190, 5, 5])))[0]).toMatchObject({
      identity: 'unknown',
      distance: Number.POSITIVE_INFINITY,
    });
  });

  it('warns when the gallery threshold was calibrated at another precision than the embedder runs at', async () => {
    const fp32 = new ColourEmbedder();
    const [red] = await fp32.embed([frame([200, 0, 0], 8)]);
    const base = FileGallery.create({
      embedder: fp32,
      identities: [{ name: 'red', examples: [{ source: 'r', embedding: red! }] }],
    });
    const calibratedAt = (precision?: 'fp32' | 'int8') =>
      base.withThreshold(0.2, {
        method: 'leave-one-out',
        targetFar: 0.001,
        achievedFar: 0,
        achievedFrr: 0,
        genuinePairs: 1,
        impostorPairs: 1,
        calibratedAt: '2026-12-03T00:00:00.000Z',
        equalErrorRate: { threshold: 0.2, rate: 0 },
        keyPoints: [],
        ...(precision ? { precision } : {}),
      });
    const int8Gallery = calibratedAt('int8');
    const atFp32 = await createFaceRecognizer({ provider, detector, embedder: fp32, gallery: int8Gallery });
    expect(atFp32.warnings).toEqual([
      "the gallery's threshold was calibrated on int8 embeddings and the faces are embedded at fp32: its " +
        'false-accept rate may differ from the 0.001 it was calibrated for; calibrate it at fp32',
    ]);
    // The warning does not change the answer: the calibrated threshold is still the one matched at.
    expect((await atFp32.recognize(frame([190, 5, 5])))[0]).toMatchObject({
      identity: 'red',
      threshold: 0.2,
    });

    const int8 = new ColourEmbedder(undefined, 'colour', 'int8');
    expect(int8.precision).toBe('int8');
    expect(fp32.precision).toBe('fp32');
    const same = await createFaceRecognizer({ provider, detector, embedder: int8, gallery: int8Gallery });
    expect(same.warnings).toEqual([]);
    // A calibration that did not record its precision, and no gallery at all, say nothing.
    const old = await createFaceRecognizer({ provider, detector, embedder: int8, gallery: calibratedAt() });
    expect(old.warnings).toEqual([]);
    expect((await createFaceRecognizer({ provider, detector, embedder: int8 })).warnings).toEqual([]);

    // A metric option other than the gallery's: verify cannot use the gallery's threshold, and says so.
    const cosine = await createFaceRecognizer({
      provider,
      detector,
      embedder: int8,
      gallery: int8Gallery,
      metric: 'cosine',
    });
    expect(cosine.warnings).toEqual([
      "verify compares cosine distances and the gallery is euclidean: verify does not use the gallery's " +
        "threshold (it uses the one you pass, else the registry's cosine one); recognize matches with the " +
        "gallery's metric and threshold",
    ]);
    const sameMetric = {
      provider,
      detector,
      embedder: int8,
      gallery: int8Gallery,
      metric: 'euclidean' as const,
    };
    expect((await createFaceRecognizer(sameMetric)).warnings).toEqual([]);
  });

  it('refuses bad options and disposes only what it loaded', async () => {
    await expect(
      createFaceRecognizer({ provider, detector, embedder: 'colour', extra: 1 } as never),
    ).rejects.toThrow(InvalidOptionsError);
    await expect(createFaceRecognizer({ provider, detector, embedder: 'nope' })).rejects.toThrow(
      'No embedder model "nope"',
    );
    // Limits that no photo could pass are refused here, not as every photo's fault later.
    for (const decodeLimits of [{ maxBytes: 0 }, { maxPixels: Number.NaN }, { maxbytes: 10 }]) {
      await expect(
        createFaceRecognizer({ provider, detector, embedder: 'colour', decodeLimits } as never),
      ).rejects.toThrow(/^createFaceRecognizer: decodeLimits/);
    }
    const mine = new ColourEmbedder();
    const recognizer = await createFaceRecognizer({ provider, detector, embedder: mine });
    await recognizer.dispose();
    expect(mine.released).toBe(0);
    // Disposed, the recognizer refuses calls, although the models passed in still work for their owner.
    await expect(recognizer.embed(frame([1, 1, 1]))).rejects.toThrow('this FaceRecognizer has been disposed');
    await expect(recognizer.verify(frame([1, 1, 1]), frame([1, 1, 1]))).rejects.toThrow(DisposedError);
    expect(await mine.embed([frame([1, 1, 1], 8)])).toHaveLength(1);
    const owned = await createFaceRecognizer({ provider, detector, embedder: 'colour' });
    await owned.dispose();
    await expect(owned.embed(frame([1, 1, 1]))).rejects.toThrow(DisposedError);
  });

  it('refuses options given next to a model already made (they would be ignored), and types those of built-in ids', async () => {
    const mine = new ColourEmbedder();
    await expect(
      createFaceRecognizer({ provider, detector, embedder: mine, embedderOptions: { maxBatchSize: 2 } }),
    ).rejects.toThrow(
      /createFaceRecognizer: embedderOptions: apply to an embedder given by id; the embedder given is already made/,
    );
    await expect(
      createFaceRecognizer({ provider, detector, embedder: 'colour', detectorOptions: { minFaceSize: 400 } }),
    ).rejects.toThrow(/detectorOptions: apply to a detector given by id; the detector given is already made/);
    expect(mine.released).toBe(0);
    // Checked by the type-check: a built-in id's options are its own type; a registry-only id's are unknown.
    const typed = (o: Parameters<typeof createFaceRecognizer<'faceapi-resnet', 'mtcnn'>>[0]) => o;
    typed({
      provider,
      embedder: 'faceapi-resnet',
      // @ts-expect-error misspelt option of a built-in embedder
      embedderOptions: { precison: 'int8' },
    });
    // @ts-expect-error an option of the wrong type for the built-in detector
    typed({ provider, embedder: 'faceapi-resnet', detectorOptions: { minFaceSize: 'x' } });
    expect(
      typed({ provider, embedder: 'faceapi-resnet', embedderOptions: { precision: 'int8' } }),
    ).toBeTruthy();
  });
});

describe('BaseEmbedder', () => {
  it('batches by maxBatchSize and keeps the order', async () => {
    const embedder = new ColourEmbedder(2);
    const colours: [number, number, number][] = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [9, 9, 9],
      [50, 0, 0],
    ];
    const one = await Promise.all(colours.map(async (c) => (await embedder.embed([frame(c, 8)]))[0]!));
    embedder.batches = [];
    const all = await embedder.embed(colours.map((c) => frame(c, 8)));
    expect(embedder.batches).toEqual([2, 2, 1]);
    expect(all).toEqual(one);
    expect(await embedder.embed([])).toEqual([]);
    expect(new ColourEmbedder().maxBatchSize).toBe(16);
  });

  it('checks every crop before any inference, and the model’s output', async () => {
    const embedder = new ColourEmbedder();
    await expect(embedder.embed([frame([1, 1, 1], 8), frame([1, 1, 1], 9)])).rejects.toThrow(
      'face 1 is 9×9; colour takes 8×8 crops',
    );
    expect(embedder.batches).toEqual([]);
    embedder.output = 'short';
    await expect(embedder.embed([frame([1, 1, 1], 8)])).rejects.toThrow(EmbedderOutputError);
    embedder.output = 'nan';
    await expect(embedder.embed([frame([1, 1, 1], 8)])).rejects.toThrow(
      /non-finite value in the embedding of face 0/,
    );
    // A damaged model graph gave all-zero embeddings (the second face's here).
    embedder.output = 'zero';
    await expect(embedder.embed([frame([1, 1, 1], 8), frame([2, 2, 2], 8)])).rejects.toThrow(
      'the embedding of face 1 is all zeros (is the model file damaged?)',
    );
    // A custom embedder that forgot to normalise: its distances would mean nothing to any threshold.
    embedder.output = 'unnormalised';
    await expect(embedder.embed([frame([1, 1, 1], 8)])).rejects.toThrow(
      /^colour: the embedding of face 0 has L2 norm 3\.00000, not 1: runBatch must return L2-normalised rows/,
    );
  });

  it('releases once; later calls reject with DisposedError', async () => {
    const embedder = new ColourEmbedder();
    await embedder.dispose();
    await embedder.dispose();
    expect(embedder.released).toBe(1);
    await expect(embedder.embed([frame([1, 1, 1], 8)])).rejects.toThrow(DisposedError);
  });
});
