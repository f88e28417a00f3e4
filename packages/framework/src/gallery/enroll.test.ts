import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaceDetection } from '../contracts/detector.js';
import type { CropPolicy } from '../contracts/embedder.js';
import { InvalidOptionsError } from '../errors.js';
import { encodeJpeg, encodePng } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { fakePreprocessing } from '../testing/fakes.js';
import { prepareExamples } from './collection.js';
import {
  type EnrollmentDetector,
  type EnrollOptions,
  type EnrollProgress,
  enrollGallery,
  findLookAlikes,
} from './enroll.js';
import { FileGallery } from './gallery.js';

/**
 * Synthetic images tell the fake detector what to find: the red channel is 50 × the number of faces, the
 * green channel a marker (a multiple of 10) that ends up in the embedding. Uniform images survive JPEG.
 */
function image(faces: number, marker: number, width = 8, height = 8): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = 50 * faces;
    data[3 * i + 1] = marker;
    data[3 * i + 2] = 128;
  }
  return { width, height, data };
}

const CROP = 4;

/**
 * A crop whose first pixel is `value` (what the fake embedder reads), on a checkerboard of `value` and
 * `value + 40`, so it is sharp: the Laplacian of its interior is ±160, variance 25,600. `flat`: uniform.
 */
function crop(value: number, size = CROP, flat = false): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    const odd = !flat && ((i % size) + Math.floor(i / size)) % 2 === 1;
    data.fill(odd ? value + 40 : value, 3 * i, 3 * i + 3);
  }
  return { width: size, height: size, data };
}

/** Landmarks of a frontal face: the nose midway between the eyes (yaw 0). */
const FRONTAL: FaceDetection['landmarks'] = [
  [1, 1],
  [2, 1],
  [1.5, 1.5],
  [1, 2],
  [2, 2],
];

/**
 * Faces come smallest first (the contract says largest first; enrollment must not rely on it). Face `i` has
 * a crop filled with `marker + i`, so the largest face's crop carries `marker + faces − 1`.
 */
function fakeDetector(
  options: { cropSize?: number; landmarks?: FaceDetection['landmarks']; flat?: boolean } = {},
) {
  const calls: number[] = [];
  const policies: (CropPolicy | undefined)[] = [];
  const detector: EnrollmentDetector = {
    async detectFaces(images, detectOptions) {
      calls.push(images.length);
      policies.push(detectOptions?.crop);
      const size = options.cropSize ?? detectOptions?.crop?.size.width ?? 0;
      return images.map((img) => {
        const n = Math.round(img.data[0]! / 50);
        const marker = Math.round(img.data[1]! / 10) * 10;
        const faces: FaceDetection[] = Array.from({ length: n }, (_, i) => ({
          box: [0, 0, 10 * (i + 1), 10 * (i + 1)],
          score: 0.99,
          landmarks: options.landmarks ?? FRONTAL,
        }));
        return {
          faces,
          crops: faces.map((f, i) => ({
            detection: f,
            cropBox: f.box,
            image: crop(marker + i, size, options.flat),
          })),
        };
      });
    },
  };
  return { detector, calls, policies };
}

const preprocessing = fakePreprocessing(CROP, {
  margin: 2,
  layout: 'NCHW',
  mean: [127.5, 127.5, 127.5],
  std: [128, 128, 128],
});

/** Embeds a crop of value v as [v, 100 − v, 1] (normalised by the gallery). */
function fakeEmbedder() {
  const calls: number[] = [];
  const embedder: EnrollOptions['embedder'] = {
    modelId: 'fake/embedder',
    weightsSha256: 'f'.repeat(64),
    dimension: 3,
    preprocessing,
    async embed(crops) {
      calls.push(crops.length);
      return crops.map((c) => {
        const v = c.data[0]!;
        const n = Math.hypot(v, 100 - v, 1);
        return Float32Array.of(v / n, (100 - v) / n, 1 / n);
      });
    },
  };
  return { embedder, calls };
}

const expectedEmbedding = (v: number) => {
  const n = Math.hypot(v, 100 - v, 1);
  return [v / n, (100 - v) / n, 1 / n].map((x) => expect.closeTo(x, 6));
};

let root: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'facerec-enroll-'));
  const write = (file: string, bytes: Uint8Array | string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), bytes);
  };
  const png = (faces: number, marker: number, w?: number, h?: number) =>
    encodePng(image(faces, marker, w, h));
  write('alice/a1.png', await png(1, 10));
  write('alice/a2.PNG', await png(1, 20));
  write('alice/group.png', await png(2, 30));
  write('alice/notes.txt', 'not an image');
  write('alice/.DS_Store', 'finder');
  write('alice/Thumbs.db', 'explorer');
  write('erin/.DS_Store', 'finder');
  write('__MACOSX/alice/._a1.png', 'resource fork');
  write('alice/old/a0.png', await png(1, 90));
  write('alice/old/deeper/a00.png', await png(1, 90));
  const raw = image(1, 40);
  write(
    'bob/b1.webp',
    await sharp(raw.data, { raw: { width: 8, height: 8, channels: 3 } })
      .webp({ lossless: true })
      .toBuffer(),
  );
  write('bob/nobody.png', await png(0, 60));
  write('bob/corrupt.jpg', 'this is not an image at all');
  write('bob/truncated.png', (await png(1, 70)).subarray(0, 40));
  write('bob/anim.png', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
  mkdirSync(path.join(root, 'carol'));
  write('dave/big.png', await png(1, 80, 200, 100));
  write('dave/d1.jpeg', await encodeJpeg(image(1, 50), 100));
  write('stray.png', await png(1, 10));
  write('README.md', '# people');
  write('.hidden/x.png', await png(1, 10));
  write('unknown/u.png', await png(1, 10));
  write('no face/n.png', await png(1, 10));
  write('Unknown/U.png', await png(1, 10));
  // A name no store would take (a newline in it).
  write('two\nlines/t.png', await png(1, 10));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const byFile = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : 1);

describe('enrollGallery', () => {
  it('enrolls one face per image and reports every other file with a reason', async () => {
    const { detector, calls: detectCalls } = fakeDetector();
    const { embedder, calls: embedCalls } = fakeEmbedder();
    const progress: EnrollProgress[] = [];
    const { gallery, enrolled, skipped, unenrolled } = await enrollGallery({
      root,
      detector,
      embedder,
      batchSize: 4,
      decodeLimits: { maxPixels: 10_000 },
      onProgress: (e) => progress.push(e),
    });

    expect(gallery.names).toEqual(['alice', 'bob', 'dave']);
    // The empty folder is a person left out; the reserved and invalid names are no identity folders.
    expect(unenrolled).toEqual(['carol', 'erin']);
    expect(gallery.embedder).toEqual({
      modelId: 'fake/embedder',
      weightsSha256: 'f'.repeat(64),
      dimension: 3,
      preprocessing,
    });
    expect(gallery.threshold).toBe(0);
    const examples = (name: string) =>
      gallery.examples(name).map((e) => ({ source: e.source, embedding: Array.from(e.embedding) }));
    expect(examples('alice')).toEqual([
      { source: 'alice/a1.png', embedding: expectedEmbedding(10) },
      { source: 'alice/a2.PNG', embedding: expectedEmbedding(20) },
    ]);
    expect(examples('bob')).toEqual([{ source: 'bob/b1.webp', embedding: expectedEmbedding(40) }]);
    expect(examples('dave')).toEqual([{ source: 'dave/d1.jpeg', embedding: expectedEmbedding(50) }]);
    // Box 10 px, frontal landmarks, the checkerboard crop's Laplacian variance (see `crop`).
    const quality = { size: 10, yaw: 0, sharpness: expect.closeTo(25_600, 6) };
    expect(enrolled).toEqual([
      { identity: 'alice', file: 'alice/a1.png', faces: 1, quality },
      { identity: 'alice', file: 'alice/a2.PNG', faces: 1, quality },
      { identity: 'bob', file: 'bob/b1.webp', faces: 1, quality },
      { identity: 'dave', file: 'dave/d1.jpeg', faces: 1, quality },
    ]);

    expect([...skipped].sort(byFile).map(({ file, reason }) => ({ file, reason }))).toEqual([
      { file: '.hidden/', reason: 'hidden' },
      { file: 'README.md', reason: 'not in an identity folder' },
      { file: 'Unknown/U.png', reason: 'reserved identity name' },
      { file: '__MACOSX/', reason: 'hidden' },
      { file: 'alice/.DS_Store', reason: 'hidden' },
      { file: 'alice/Thumbs.db', reason: 'hidden' },
      { file: 'alice/group.png', reason: 'several faces' },
      { file: 'alice/notes.txt', reason: 'unsupported extension' },
      { file: 'alice/old/a0.png', reason: 'nested folder' },
      { file: 'alice/old/deeper/a00.png', reason: 'nested folder' },
      { file: 'bob/anim.png', reason: 'unsupported format' },
      { file: 'bob/corrupt.jpg', reason: 'undecodable' },
      { file: 'bob/nobody.png', reason: 'no face' },
      { file: 'bob/truncated.png', reason: 'undecodable' },
      { file: 'carol/', reason: 'empty folder' },
      { file: 'dave/big.png', reason: 'too large' },
      { file: 'erin/', reason: 'empty folder' },
      { file: 'erin/.DS_Store', reason: 'hidden' },
      { file: 'no face/n.png', reason: 'reserved identity name' },
      { file: 'stray.png', reason: 'not in an identity folder' },
      { file: 'two\nlines/t.png', reason: 'invalid identity name' },
      { file: 'unknown/u.png', reason: 'reserved identity name' },
    ]);
    expect(skipped.find((s) => s.file === 'two\nlines/t.png')?.detail).toBe(
      'the folder name holds a control character',
    );
    const detail = (file: string) => skipped.find((s) => s.file === file)?.detail;
    expect(detail('Unknown/U.png')).toBe(
      '"Unknown" is reserved (as "unknown", in any case) for unmatched queries',
    );
    expect(detail('alice/group.png')).toBe('2 faces detected');
    expect(detail('dave/big.png')).toMatch(/20000 pixels exceeds the limit of 10000 pixels/);
    expect(skipped.find((s) => s.file === 'dave/big.png')?.tooLarge).toEqual({
      limit: 'pixels',
      actual: 20000,
    });
    expect(detail('bob/anim.png')).toMatch(/Unsupported image format "gif"/);

    // Progress: one event per image file in an identity folder, in order, ending at total.
    expect(progress.map((e) => e.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(progress.map((e) => e.total))).toEqual(new Set([10]));
    expect(progress.map((e) => `${e.file}:${e.outcome}`)).toEqual([
      'alice/a1.png:enrolled',
      'alice/a2.PNG:enrolled',
      'alice/group.png:skipped',
      'bob/anim.png:skipped',
      'bob/b1.webp:enrolled',
      'bob/corrupt.jpg:skipped',
      'bob/nobody.png:skipped',
      'bob/truncated.png:skipped',
      'dave/big.png:skipped',
      'dave/d1.jpeg:enrolled',
    ]);
    expect(progress[2]).toMatchObject({ identity: 'alice', reason: 'several faces' });

    // Batches of 4 files: decodable images go to the detector together, kept crops to the embedder together;
    // bob/nobody.png (no face in a small frame) is padded and detected again (the pre-cropped fallback).
    expect(detectCalls).toEqual([3, 2, 1, 1]);
    expect(embedCalls).toEqual([2, 1, 1]);
  });

  it("multipleFaces: 'largest' enrolls the largest face by box area, not the first", async () => {
    const { detector } = fakeDetector();
    const { embedder } = fakeEmbedder();
    const { gallery, enrolled, skipped } = await enrollGallery({
      root,
      detector,
      embedder,
      multipleFaces: 'largest',
    });
    const group = gallery.examples('alice').find((e) => e.source === 'alice/group.png');
    expect(Array.from(group!.embedding)).toEqual(expectedEmbedding(31));
    expect(enrolled).toContainEqual({
      identity: 'alice',
      file: 'alice/group.png',
      faces: 2,
      quality: { size: 20, yaw: 0, sharpness: expect.closeTo(25_600, 6) },
    });
    expect(skipped.map((s) => s.reason)).not.toContain('several faces');
    // Default limits: the 200×100 image is fine now.
    expect(gallery.examples('dave').map((e) => e.source)).toEqual(['dave/big.png', 'dave/d1.jpeg']);
  });

  it('names the identity folders of which every photo was skipped', async () => {
    const { gallery, unenrolled } = await enrollGallery({
      root,
      detector: fakeDetector().detector,
      embedder: fakeEmbedder().embedder,
      quality: { minFaceSize: 15 },
      multipleFaces: 'largest',
    });
    expect(gallery.names).toEqual(['alice']);
    expect(unenrolled).toEqual(['bob', 'carol', 'dave', 'erin']);
  });

  it('skips a copy of a photo enrolled before, under the same identity or another one, naming it', async () => {
    const copies = mkdtempSync(path.join(tmpdir(), 'facerec-enroll-copies-'));
    try {
      const bytes = await encodePng(image(1, 10));
      for (const file of ['alice/a1.png', 'alice/a1 copy.png', 'bob/b1.png']) {
        mkdirSync(path.dirname(path.join(copies, file)), { recursive: true });
        writeFileSync(path.join(copies, file), bytes);
      }
      writeFileSync(path.join(copies, 'bob/b2.png'), await encodePng(image(1, 40)));
      const { gallery, skipped } = await enrollGallery({
        root: copies,
        detector: fakeDetector().detector,
        embedder: fakeEmbedder().embedder,
      });
      expect(gallery.list().map((e) => e.source)).toEqual(['alice/a1 copy.png', 'bob/b2.png']);
      expect(new Set(gallery.list().map((e) => e.id)).size).toBe(2);
      expect(skipped).toEqual([
        {
          file: 'alice/a1.png',
          reason: 'duplicate',
          detail: 'the same face as alice/a1 copy.png',
          duplicateOf: { file: 'alice/a1 copy.png', identity: 'alice' },
        },
        {
          file: 'bob/b1.png',
          reason: 'duplicate',
          detail: 'the same face as alice/a1 copy.png, enrolled as alice',
          duplicateOf: { file: 'alice/a1 copy.png', identity: 'alice' },
        },
      ]);
    } finally {
      rmSync(copies, { recursive: true, force: true });
    }
  });

  it('skips faces that fail a quality check, saying which and by how much', async () => {
    const { embedder } = fakeEmbedder();
    const reasons = async (options: Partial<EnrollOptions>, detector = fakeDetector().detector) => {
      const { skipped, enrolled } = await enrollGallery({ root, detector, embedder, ...options });
      const quality = skipped.filter((s) => ['face too small', 'strong yaw', 'blurry'].includes(s.reason));
      return { quality: quality.map(({ file, reason, detail }) => ({ file, reason, detail })), enrolled };
    };
    // Faces are 10 px (the group photo's largest 20 px); the embedder's input is 4 px, so the default is 2 px.
    const small = await reasons({ quality: { minFaceSize: 15 }, multipleFaces: 'largest' });
    expect(small.quality).toEqual(
      ['alice/a1.png', 'alice/a2.PNG', 'bob/b1.webp', 'dave/big.png', 'dave/d1.jpeg'].map((file) => ({
        file,
        reason: 'face too small',
        detail: 'face 10 px, below minFaceSize 15 px',
      })),
    );
    expect(small.enrolled.map((e) => e.file)).toEqual(['alice/group.png']);
    // A face below minFaceSize does not make a photo ambiguous: the group photo's 20 px face is enrolled.
    const { enrolled, skipped } = await enrollGallery({
      root,
      detector: fakeDetector().detector,
      embedder,
      quality: { minFaceSize: 15 },
    });
    expect(enrolled.map((e) => [e.file, e.faces])).toEqual([['alice/group.png', 2]]);
    expect(skipped.map((s) => s.reason)).not.toContain('several faces');

    // The nose under the right eye: offset half the eye distance, atan(1) = 45°.
    const turned = fakeDetector({
      landmarks: [
        [1, 1],
        [2, 1],
        [2, 1.5],
        [1, 2],
        [2, 2],
      ],
    }).detector;
    const yaw = await reasons({}, turned);
    expect(yaw.quality[0]).toEqual({
      file: 'alice/a1.png',
      reason: 'strong yaw',
      detail: 'head turned about 45°, above maxYaw 40°',
    });
    expect(yaw.enrolled).toEqual([]);
    expect((await reasons({ quality: { maxYaw: 46 } }, turned)).quality).toEqual([]);

    const blurred = await reasons({}, fakeDetector({ flat: true }).detector);
    expect(blurred.quality[0]).toEqual({
      file: 'alice/a1.png',
      reason: 'blurry',
      detail: 'sharpness 0.0 (variance of the Laplacian), below minSharpness 10',
    });
    expect((await reasons({ quality: false }, fakeDetector({ flat: true }).detector)).quality).toEqual([]);
    await expect(
      enrollGallery({ root, detector: turned, embedder, quality: { maxYaw: 100 } }),
    ).rejects.toThrow(/quality\.maxYaw/);
  });

  it('pads a small frame without a face and detects again (a face crop that fills the frame)', async () => {
    const frames: number[] = [];
    // Finds a face only with context around it: in a padded frame (8 px + 2 × 4 px of padding).
    const detector: EnrollmentDetector = {
      async detectFaces(images, options) {
        frames.push(...images.map((i) => i.width));
        return images.map((img) => {
          const faces: FaceDetection[] =
            img.width === 16
              ? [
                  {
                    box: [3, 3, 13, 13],
                    score: 0.9,
                    landmarks: FRONTAL.map(([x, y]) => [x + 4, y + 4]) as FaceDetection['landmarks'],
                  },
                ]
              : [];
          const size = options?.crop?.size.width ?? 0;
          return {
            faces,
            crops: faces.map((f) => ({ detection: f, cropBox: f.box, image: crop(60, size) })),
          };
        });
      },
    };
    const { embedder } = fakeEmbedder();
    const people = mkdtempSync(path.join(tmpdir(), 'facerec-precropped-'));
    mkdirSync(path.join(people, 'zoe'));
    writeFileSync(path.join(people, 'zoe', 'z.png'), await encodePng(image(0, 10)));
    const found = await enrollGallery({ root: people, detector, embedder, quality: false });
    // The face, mapped back by the 4 px of padding: [−1, −1, 9, 9] on the 8×8 frame.
    expect(found.enrolled).toEqual([
      { identity: 'zoe', file: 'zoe/z.png', faces: 1, quality: { size: 10, yaw: 0, sharpness: 0 } },
    ]);
    expect(frames.slice(-2)).toEqual([8, 16]);
    const without = await enrollGallery({ root: people, detector, embedder, precroppedFallback: false });
    expect(without.skipped).toEqual([{ file: 'zoe/z.png', reason: 'no face' }]);
    rmSync(people, { recursive: true, force: true });
  });

  it('names an identity by its folder in NFC, and skips a folder name with spaces at either end', async () => {
    const { detector } = fakeDetector();
    const { embedder } = fakeEmbedder();
    const people = mkdtempSync(path.join(tmpdir(), 'facerec-names-'));
    for (const folder of ['Jose\u0301', ' ann']) {
      mkdirSync(path.join(people, folder));
      writeFileSync(path.join(people, folder, 'p.png'), await encodePng(image(1, 10)));
    }
    const { enrolled, skipped } = await enrollGallery({ root: people, detector, embedder, quality: false });
    expect(enrolled.map((e) => e.identity)).toEqual(['Jos\u00e9']);
    expect(skipped).toEqual([
      {
        file: ' ann/p.png',
        reason: 'invalid identity name',
        detail: 'the folder name has spaces at the start or end (or is only spaces)',
      },
    ]);
    rmSync(people, { recursive: true, force: true });
  });

  it('records a file whose name holds a control character with it escaped, so every store takes the gallery', async () => {
    const { detector } = fakeDetector();
    const { embedder } = fakeEmbedder();
    const people = mkdtempSync(path.join(tmpdir(), 'facerec-sources-'));
    mkdirSync(path.join(people, 'ann'));
    writeFileSync(path.join(people, 'ann', 'a\nb.png'), await encodePng(image(1, 10)));
    const { gallery } = await enrollGallery({ root: people, detector, embedder, quality: false });
    const [example] = gallery.examples('ann');
    expect(example!.source).toBe('ann/a\\nb.png');
    // What a store's add checks (a gallery copy into Postgres refused the raw newline, after starting the copy).
    expect(() => prepareExamples('copy', 'ann', example!.embedding.length, [example!])).not.toThrow();
    rmSync(people, { recursive: true, force: true });
  });

  it('passes metric, aggregation and threshold to the gallery', async () => {
    const { gallery } = await enrollGallery({
      root,
      detector: fakeDetector().detector,
      embedder: fakeEmbedder().embedder,
      metric: 'cosine',
      aggregation: 'centroid',
      threshold: 0.3,
      kernel: 'js',
    });
    expect([gallery.metric, gallery.aggregation, gallery.threshold, gallery.kernel]).toEqual([
      'cosine',
      'centroid',
      0.3,
      'js',
    ]);
  });

  it("asks the detector for crops with the embedder's crop policy, on every call", async () => {
    const { detector, calls, policies } = fakeDetector();
    await enrollGallery({ root, detector, embedder: fakeEmbedder().embedder, precroppedFallback: false });
    expect(calls.length).toBeGreaterThan(0);
    expect(policies).toEqual(calls.map(() => preprocessing.crop));
  });

  it('refuses a detector that cuts crops of another size anyway', async () => {
    const { detector } = fakeDetector({ cropSize: 5 });
    const run = enrollGallery({ root, detector, embedder: fakeEmbedder().embedder });
    await expect(run).rejects.toThrow(InvalidOptionsError);
    await expect(run).rejects.toThrow(
      /the detector cuts 5×5 face crops but embedder "fake\/embedder" takes 4×4 inputs/,
    );
  });

  it('refuses bad options and a missing root', async () => {
    const { detector } = fakeDetector();
    const { embedder } = fakeEmbedder();
    await expect(enrollGallery({ root, detector, embedder, batch: 3 } as never)).rejects.toThrow(
      /Unrecognized key/,
    );
    await expect(enrollGallery({ root, detector, embedder, batchSize: 0 })).rejects.toThrow(
      /enrollGallery: batchSize/,
    );
    await expect(enrollGallery({ root, detector: {} as never, embedder })).rejects.toThrow(
      /detector: must have a detectFaces/,
    );
    await expect(enrollGallery({ root: path.join(root, 'nope'), detector, embedder })).rejects.toThrow(
      /cannot read the folder of labelled images .*nope: no such folder/,
    );
  });

  it('stops between batches when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(
      enrollGallery({
        root,
        detector: fakeDetector().detector,
        embedder: fakeEmbedder().embedder,
        signal: controller.signal,
      }),
    ).rejects.toThrow('stop');
  });

  it('lets detector failures through: they are not about one file', async () => {
    const detector: EnrollmentDetector = {
      detectFaces: async () => {
        throw new Error('model crashed');
      },
    };
    await expect(enrollGallery({ root, detector, embedder: fakeEmbedder().embedder })).rejects.toThrow(
      'model crashed',
    );
  });
});

describe('findLookAlikes', () => {
  const unit = (...v: number[]) => {
    const n = Math.hypot(...v);
    return Float32Array.from(v, (x) => x / n);
  };
  const gallery = FileGallery.create({
    embedder: { modelId: 'fake/embedder', weightsSha256: undefined, dimension: 3, preprocessing },
    identities: [
      { name: 'amy', examples: [{ source: 'amy/1.png', embedding: unit(1, 0, 0) }] },
      // Amy's face again (0.1 away), and one of her own.
      {
        name: 'amy_alias',
        examples: [
          { source: 'amy_alias/1.png', embedding: unit(1, 0.1, 0) },
          { source: 'amy_alias/2.png', embedding: unit(0, 1, 0) },
        ],
      },
      { name: 'raj', examples: [{ source: 'raj/1.png', embedding: unit(0, 0, 1) }] },
    ],
  });

  it('names each photo another identity is recognised in at the threshold, with that identity and distance', async () => {
    const found = await findLookAlikes(gallery, 0.5);
    expect(found).toEqual([
      { source: 'amy/1.png', enrolledAs: 'amy', identity: 'amy_alias', distance: expect.closeTo(0.0998, 3) },
      {
        source: 'amy_alias/1.png',
        enrolledAs: 'amy_alias',
        identity: 'amy',
        distance: expect.closeTo(0.0998, 3),
      },
    ]);
    // Below that distance, nobody; far above it, every photo has a nearest other person.
    expect(await findLookAlikes(gallery, 0.05)).toEqual([]);
    expect(await findLookAlikes(gallery, 2)).toHaveLength(4);
  });
});
