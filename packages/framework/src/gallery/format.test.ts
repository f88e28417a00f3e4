import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FacerecInputError } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import { embedderInfo, jitter, prng, randomUnit } from './__fixtures__/synthetic.js';
import { GalleryFormatError, GalleryStoreNotFoundError } from './errors.js';
import {
  GALLERY_FORMAT_VERSION,
  type GalleryFileV1,
  parseGalleryText,
  parseGalleryTextInSlices,
  serialiseGallery,
} from './format.js';
import { FileGallery } from './gallery.js';
import type { GalleryCalibration } from './types.js';

const dir = mkdtempSync(path.join(tmpdir(), 'facerec-gallery-format-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const calibration: GalleryCalibration = {
  method: 'probes',
  targetFar: 0.01,
  achievedFar: 0.0098,
  achievedFrr: 0.031,
  genuinePairs: 128,
  impostorPairs: 8128,
  calibratedAt: '2025-01-02T03:04:05.000Z',
  equalErrorRate: { threshold: 1.02, rate: 0.02 },
  keyPoints: [{ targetFar: 0.01, threshold: 0.98, far: 0.0098, tar: 0.969, resolved: true }],
};

function sample(seed = 1) {
  const rand = prng(seed);
  const identities = ['carol', 'alice', 'bob'].map((name, i) => {
    const base = randomUnit(128, rand);
    return {
      name,
      examples: Array.from({ length: i + 1 }, (_, j) => ({
        source: `${name}/${j}.jpg`,
        embedding: jitter(base, 0.05, rand),
      })),
    };
  });
  return FileGallery.create({
    embedder: embedderInfo(128),
    metric: 'cosine',
    aggregation: 'centroid',
    threshold: 0.42,
    calibration,
    createdAt: '2025-01-01T00:00:00.000Z',
    identities,
  }).withThreshold(0.42, calibration);
}

/** A valid file for `value` mutations. */
function validFile(): GalleryFileV1 {
  return JSON.parse(sample().toText()) as GalleryFileV1;
}

function formatError(fn: () => unknown): GalleryFormatError {
  try {
    fn();
  } catch (error) {
    expect(GalleryFormatError.isInstance(error)).toBe(true);
    expect(FacerecInputError.isInstance(error)).toBe(true);
    return error as GalleryFormatError;
  }
  throw new Error('expected a GalleryFormatError');
}

describe('gallery file', () => {
  it('round-trips through save and load: same settings, same float32 bits, same answers', async () => {
    const gallery = sample();
    const file = path.join(dir, 'round-trip.json');
    await gallery.save(file);
    const loaded = await FileGallery.load(file);
    expect(loaded.embedder).toEqual(gallery.embedder);
    expect(loaded.metric).toBe('cosine');
    expect(loaded.aggregation).toBe('centroid');
    expect(loaded.threshold).toBe(0.42);
    expect(loaded.calibration).toEqual(calibration);
    expect(loaded.createdAt).toBe('2025-01-01T00:00:00.000Z');
    expect(await loaded.identities()).toEqual(['alice', 'bob', 'carol']);
    for (const name of await gallery.identities()) {
      const before = gallery.examples(name);
      const after = loaded.examples(name);
      expect(after.map((e) => e.source)).toEqual(before.map((e) => e.source));
      after.forEach((e, i) => {
        expect(Buffer.from(e.embedding.buffer).equals(Buffer.from(before[i]!.embedding.buffer))).toBe(true);
      });
    }
    const rand = prng(99);
    const queries = Array.from({ length: 5 }, () => randomUnit(128, rand));
    expect(await loaded.match(queries, { topK: 3 })).toEqual(await gallery.match(queries, { topK: 3 }));
    // Saving what was loaded reproduces the file byte for byte.
    expect(loaded.toText()).toBe(readFileSync(file, 'utf8'));
  });

  it('writes the documented layout: versioned header, base64 little-endian float32, one identity per line', async () => {
    const gallery = FileGallery.create({
      embedder: embedderInfo(2, { weightsSha256: undefined }),
      threshold: 0.5,
      createdAt: '2025-01-01T00:00:00.000Z',
      identities: [{ name: 'a', examples: [{ source: 'a/1.png', embedding: [0.6, 0.8] }] }],
    });
    const text = gallery.toText();
    const file = JSON.parse(text) as GalleryFileV1;
    expect(file).toMatchObject({
      format: 'facerec-gallery',
      formatVersion: 1,
      embeddingEncoding: 'base64-float32le',
      metric: 'euclidean',
      aggregation: 'nearest',
      threshold: 0.5,
      calibration: null,
      embedder: { modelId: 'test-net/synthetic', weightsSha256: null, dimension: 2 },
    });
    // float32(0.6) = 0x3F19999A, float32(0.8) = 0x3F4CCCCD, little-endian.
    const expected = Buffer.from([0x9a, 0x99, 0x19, 0x3f, 0xcd, 0xcc, 0x4c, 0x3f]).toString('base64');
    expect(file.identities).toEqual([{ name: 'a', examples: [{ source: 'a/1.png', embedding: expected }] }]);
    expect(text).toContain(
      `\n    {"name":"a","examples":[{"source":"a/1.png","embedding":"${expected}"}]}\n  ]\n}\n`,
    );
    expect(FileGallery.parse(text).embedder.weightsSha256).toBeUndefined();
  });

  it('writes and reads an empty gallery', async () => {
    const empty = FileGallery.create({ embedder: embedderInfo(4), identities: [] });
    const text = empty.toText();
    expect(JSON.parse(text).identities).toEqual([]);
    expect(FileGallery.parse(text).size).toBe(0);
  });

  it('saves atomically: replaces the old file and leaves no temporary file', async () => {
    const file = path.join(dir, 'atomic', 'g.json');
    const sub = path.dirname(file);
    // A missing folder is created (`facerec enroll --out gallery/gallery.json` in a fresh clone).
    await sample().save(file);
    expect(readdirSync(sub)).toEqual(['g.json']);
    writeFileSync(file, 'old content');
    await sample().save(file);
    expect((await FileGallery.load(file)).size).toBe(3);
    expect(readdirSync(sub)).toEqual(['g.json']);
    const smaller = (await FileGallery.load(file)).withoutIdentities(['bob']);
    await smaller.save(file);
    expect((await FileGallery.load(file)).names).toEqual(['alice', 'carol']);
    expect(readdirSync(sub)).toEqual(['g.json']);
  });

  it('refuses to write a file beyond the size limit before its last byte, and the old file stays', async () => {
    // The real limit (480 MiB) is too large for a unit test: the same check at the exact size of a small file.
    const text = sample().toText();
    const bytes = Buffer.byteLength(text);
    const data = parseGalleryText(text);
    expect([...serialiseGallery(data, bytes)].join('')).toBe(text);
    for (const limit of [bytes - 1, Math.floor(bytes / 2), 10]) {
      const written: string[] = [];
      const error = formatError(() => {
        for (const piece of serialiseGallery(data, limit)) written.push(piece);
      });
      expect(error.message).toContain('not written, the gallery is unchanged');
      expect(Buffer.byteLength(written.join(''))).toBeLessThanOrEqual(limit);
    }
    // Where it was to go, when said, is named (`facerec gallery add` printed the refusal without the file).
    const named = formatError(() => [...serialiseGallery(data, 10, '/srv/g.json')]);
    expect(named.message).toMatch(/^\/srv\/g\.json: this change would take the gallery beyond the /);
    const file = path.join(dir, 'limit', 'g.json');
    await sample().save(file);
    await expect(writeFileAtomic(file, serialiseGallery(data, bytes - 1))).rejects.toThrow(/not written/);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(path.dirname(file))).toEqual(['g.json']);
  });

  it('names a missing file as GalleryStoreNotFoundError, a folder as such, and lets other file-system errors through', async () => {
    const missing = path.join(dir, 'missing.json');
    const error = await FileGallery.load(missing).catch((e: unknown) => e);
    expect(GalleryStoreNotFoundError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'GALLERY_NOT_FOUND', location: missing });
    await expect(FileGallery.load(dir)).rejects.toThrow(
      `${dir} is a folder, not a gallery file; name a file in it`,
    );
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    await expect(FileGallery.load(path.join(file, 'inside.json'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

describe('withThreshold', () => {
  it('refuses a threshold that is not a finite number ≥ 0 and a calibration record that is not valid, naming each field', () => {
    const gallery = sample();
    // A threshold is a distance: never negative (0 stands for never calibrated).
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      expect(() => gallery.withThreshold(bad)).toThrow(
        /FileGallery.withThreshold.*threshold must be a finite number ≥ 0/,
      );
    }
    expect(gallery.withThreshold(0).isCalibrated).toBe(false);
    const broken = { ...calibration, method: 'guess', targetFar: 2 } as unknown as GalleryCalibration;
    expect(() => gallery.withThreshold(0.5, broken)).toThrow(
      /invalid calibration record: method: .*; targetFar: /,
    );
    expect(gallery.withThreshold(0.5, calibration).calibration).toEqual(calibration);
  });
});

describe('corrupt gallery files', () => {
  const parse = (value: unknown) =>
    FileGallery.parse(typeof value === 'string' ? value : JSON.stringify(value));

  it('names the file', async () => {
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{"format": "facerec-gallery", ');
    await expect(FileGallery.load(file)).rejects.toThrow(`${file}: not valid JSON`);
    await expect(FileGallery.load(file)).rejects.toMatchObject({
      source: file,
      code: 'INVALID_GALLERY',
      problem: 'not-json',
    });
  });

  it('says where the JSON breaks in one line, quoting nothing of the file', () => {
    expect(() => parse('')).toThrow(/^not valid JSON \(it ends early: cut off\?\)$/);
    expect(() => parse('{"format": "facerec-gallery", ')).toThrow(
      /^not valid JSON \(expected .*property name at character 31\)$/,
    );
    expect(() => parse('{"format" "facerec-gallery"}')).toThrow(
      /^not valid JSON \(expected ':' after property name at character 11\)$/,
    );
    // V8 quotes the text here (newline and all): the message does not.
    expect(() => parse('secret-token{\nmore')).toThrow(/^not valid JSON \(unexpected text\)$/);
  });

  it('refuses what is not a gallery, or another format version', async () => {
    expect(formatError(() => parse('[1, 2]'))).toMatchObject({
      message: 'not a JSON object',
      problem: 'not-a-gallery',
    });
    expect(formatError(() => parse({ hello: 1 })).message).toMatch(/not a facerec gallery file/);
    expect(formatError(() => parse({ hello: 1 })).problem).toBe('not-a-gallery');
    const future = formatError(() => parse({ ...validFile(), formatVersion: GALLERY_FORMAT_VERSION + 1 }));
    expect(future.message).toMatch(
      /unsupported formatVersion 2; this version of facerec reads formatVersion 1/,
    );
    expect(future.message).toMatch(/written by a newer facerec/);
    expect(future.problem).toBe('format-version');
    expect(formatError(() => parse({ ...validFile(), formatVersion: undefined })).message).toMatch(
      /\(missing\)/,
    );
  });

  it('lists schema problems with their JSON paths', async () => {
    const file = validFile();
    const bad = {
      ...file,
      metric: 'manhattan',
      extra: true,
      embedder: { ...file.embedder, dimension: -1 },
    };
    const error = formatError(() => parse(bad));
    const paths = error.issues.map((i) => i.path);
    expect(paths).toContain('metric');
    expect(paths).toContain('embedder.dimension');
    expect(paths).toContain('');
    expect(error.message).toMatch(/^invalid gallery file \(/);
    expect(error.problem).toBe('invalid');
    const missing = formatError(() => parse({ ...file, threshold: undefined }));
    expect(missing.issues.map((i) => i.path)).toEqual(['threshold']);
    const nan = formatError(() => parse({ ...file, threshold: 'NaN' }));
    expect(nan.issues.map((i) => i.path)).toEqual(['threshold']);
  });

  it('checks every embedding: base64, length, unit norm', async () => {
    const file = validFile();
    const alice = file.identities[0]!;
    const withEmbedding = (embedding: string) => ({
      ...file,
      identities: [
        { ...alice, examples: [{ ...alice.examples[0]!, embedding }] },
        ...file.identities.slice(1),
      ],
    });
    const where = 'identities.0.examples.0.embedding';
    expect(formatError(() => parse(withEmbedding('not base64!'))).issues).toEqual([
      { path: where, message: 'not valid base64' },
    ]);
    expect(formatError(() => parse(withEmbedding('AAAAAAA='))).issues).toEqual([
      { path: where, message: 'decodes to 5 bytes, not a whole number of float32 values' },
    ]);
    expect(
      formatError(() => parse(withEmbedding(Buffer.from(new Float32Array([1, 0]).buffer).toString('base64'))))
        .issues,
    ).toEqual([{ path: where, message: "2 values; the embedder's dimension is 128" }]);
    const twice = new Float32Array(128);
    twice[0] = 2;
    expect(
      formatError(() => parse(withEmbedding(Buffer.from(twice.buffer).toString('base64')))).issues,
    ).toEqual([{ path: where, message: 'not L2-normalised (norm 2)' }]);
    const nan = new Float32Array(128).fill(Number.NaN);
    expect(
      formatError(() => parse(withEmbedding(Buffer.from(nan.buffer).toString('base64')))).issues[0]!.message,
    ).toMatch(/not L2-normalised \(norm NaN\)/);
  });

  it('refuses duplicate, reserved and empty identities', async () => {
    const file = validFile();
    const [a, b] = file.identities;
    expect(formatError(() => parse({ ...file, identities: [a, { ...b, name: a!.name }] })).issues).toEqual([
      { path: 'identities.1.name', message: 'duplicate identity "alice"' },
    ]);
    expect(formatError(() => parse({ ...file, identities: [{ ...a, name: 'unknown' }] })).issues[0]).toEqual({
      path: 'identities.0.name',
      message: '"unknown" is reserved for unmatched queries',
    });
    // The other answer: an identity named so was served as "no face" for a face it recognised.
    expect(formatError(() => parse({ ...file, identities: [{ ...a, name: 'no face' }] })).issues[0]).toEqual({
      path: 'identities.0.name',
      message:
        '"no face" is reserved for images without a face (an older facerec stored it): rename the identity in the file',
    });
    expect(formatError(() => parse({ ...file, identities: [{ ...a, examples: [] }] })).issues[0]!.path).toBe(
      'identities.0.examples',
    );
  });

  it('accepts a hand-edited but valid file', async () => {
    const file = validFile();
    const text = JSON.stringify({ ...file, threshold: 0.9, calibration: null });
    const gallery = FileGallery.parse(text);
    expect(gallery.threshold).toBe(0.9);
    expect(gallery.isCalibrated).toBe(false);
    expect((await gallery.match([randomUnit(128, prng(5))], { topK: 3 }))[0]!.candidates).toHaveLength(3);
  });
});

describe('parsing a slice at a time', () => {
  const errorOf = async (work: () => unknown) => {
    try {
      await work();
    } catch (error) {
      return error as GalleryFormatError;
    }
    throw new Error('expected a GalleryFormatError');
  };

  it('gives what parse gives, the same gallery or the same refusal', async () => {
    const file = validFile();
    const [a, b] = file.identities;
    const texts = [
      sample().toText(),
      JSON.stringify({ ...file, threshold: 0.9, calibration: null }),
      '{"format": "facerec-gallery", "formatVersion": 1, "identities": [',
      JSON.stringify({ ...file, format: 'other' }),
      JSON.stringify({ ...file, formatVersion: 2 }),
      JSON.stringify({ ...file, identities: [a, { ...b, name: a!.name }] }),
      JSON.stringify({
        ...file,
        identities: [
          { ...a, examples: [] },
          { ...b, name: 'unknown' },
        ],
      }),
      JSON.stringify({ ...file, identities: 'none' }),
      JSON.stringify({ ...file, threshold: -1, identities: [{ ...a, name: '' }] }),
      JSON.stringify({ ...file, extra: true }),
      JSON.stringify({ ...file, embedder: undefined }),
      JSON.stringify({
        ...file,
        identities: [{ ...a, examples: [{ ...a!.examples[0]!, embedding: 'AAAAAAA=' }] }],
      }),
    ];
    for (const text of texts) {
      const sliced = await errorOf(async () => (await FileGallery.parseInSlices(text)).toText()).catch(
        (e: Error) => e,
      );
      const whole = await errorOf(() => FileGallery.parse(text).toText()).catch((e: Error) => e);
      expect(String(sliced.message), text.slice(0, 80)).toBe(String(whole.message));
      if (GalleryFormatError.isInstance(whole)) {
        const refused = sliced as GalleryFormatError;
        expect([refused.issues, refused.problem]).toEqual([whole.issues, whole.problem]);
      }
    }
    const good = sample().toText();
    expect((await FileGallery.parseInSlices(good)).toText()).toBe(FileGallery.parse(good).toText());
    // In the order one zod parse of the whole file gave: the file's unknown keys after the identities' issues.
    const both = JSON.stringify({ ...file, extra: true, identities: [a, { ...b, name: 'unknown' }] });
    expect(formatError(() => FileGallery.parse(both)).issues.map((i) => i.path)).toEqual([
      'identities.1.name',
      '',
    ]);
  });

  it('lets the event loop run between identities', async () => {
    const text = sample().toText();
    const ticks: string[] = [];
    setImmediate(() => ticks.push('immediate'));
    const parsed = parseGalleryTextInSlices(text, undefined, 0).then(() => ticks.push('parsed'));
    await parsed;
    // With slices of 0 ms it yields after each of the three identities: the callback queued after it ran first.
    expect(ticks).toEqual(['immediate', 'parsed']);
  });
});
