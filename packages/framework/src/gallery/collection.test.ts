import { describe, expect, it } from 'vitest';
import type { FaceDetection } from '../contracts/detector.js';
import { ImageTooLargeError, InvalidImageError, InvalidOptionsError } from '../errors.js';
import { fakePreprocessing } from '../testing/fakes.js';
import { gaussian, prng } from './__fixtures__/synthetic.js';
import {
  addFacesFromPhotos,
  identityNameIssue,
  MAX_SOURCE_LENGTH,
  prepareExamples,
  sourceIssue,
  storableSource,
  visibleText,
} from './collection.js';

/** An embedder whose `embed` is `embed` (4 dimensions, 8-px input). */
const embedderThat = (embed: () => never) => ({
  modelId: 'm',
  weightsSha256: undefined,
  dimension: 4,
  preprocessing: fakePreprocessing(8),
  embed,
});

/** A 4-d embedder for 8-px crops that gives every face the same vector. */
const constantEmbedder = () => ({
  modelId: 'm',
  weightsSha256: undefined,
  dimension: 4,
  preprocessing: fakePreprocessing(8),
  embed: async (crops: readonly unknown[]) => crops.map(() => Float32Array.of(1, 0, 0, 0)),
});

describe('addFacesFromPhotos', () => {
  it('names the photo that cannot be decoded, keeping the error class, and adds nothing', async () => {
    const added: unknown[] = [];
    const store = { assertCompatible: () => undefined, add: async (...args: unknown[]) => added.push(args) };
    const unreachable = () => {
      throw new Error('not reached: decoding fails first');
    };
    const error = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [{ photo: new TextEncoder().encode('not an image'), source: 'notes.png' }],
      detector: { detectFaces: unreachable },
      embedder: embedderThat(unreachable),
    }).catch((e: unknown) => e);
    expect(InvalidImageError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^notes\.png: /);
    expect((error as InvalidImageError).code).toBe('INVALID_IMAGE');
    expect(added).toEqual([]);
  });

  it('refuses photos given as bare bytes, naming the entry and the shape it takes, before any model runs', async () => {
    const unreachable = () => {
      throw new Error('not reached: the shape is checked first');
    };
    const store = { assertCompatible: unreachable, add: unreachable };
    const photo = new TextEncoder().encode('bytes');
    const error = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [{ photo, source: 'a.png' }, photo as never],
      detector: { detectFaces: unreachable },
      embedder: embedderThat(unreachable),
    }).catch((e: unknown) => e);
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe(
      'addFacesFromPhotos: photos[1] is not { photo, source? }: give each photo as { photo: <file bytes, an RgbImage, or a function resolving to either>, source: <a name for messages> }',
    );
  });

  it("refuses decodeLimits no photo could pass before any photo is read (not as the photo's fault)", async () => {
    const unreachable = () => {
      throw new Error('not reached: the limits are checked first');
    };
    const error = await addFacesFromPhotos({ assertCompatible: unreachable, add: unreachable } as never, {
      identity: 'alice',
      photos: [{ photo: new Uint8Array(1), source: 'a.png' }],
      detector: { detectFaces: unreachable },
      embedder: embedderThat(unreachable),
      decodeLimits: { maxBytes: 0 },
    }).catch((e: unknown) => e);
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^addFacesFromPhotos: decodeLimits: maxBytes: /);
  });

  it('refuses the names of answers ("unknown", "no face") as identities, before any model runs', async () => {
    const unreachable = () => {
      throw new Error('not reached: the name is checked first');
    };
    for (const [identity, why] of [
      ['unknown', 'reserved for unmatched queries'],
      ['no face', 'reserved for images without a face'],
      // In any case: a client comparing answers without regard to case could not tell them apart.
      ['Unknown', 'reserved (as "unknown", in any case) for unmatched queries'],
      ['NO Face', 'reserved (as "no face", in any case) for images without a face'],
      // Nor in a spelling that reads the same: a no-break space, a zero-width joiner, two spaces, full-width.
      ['no\u00a0face', 'reserved (as "no face", in any case) for images without a face'],
      ['unknown\u200d', 'reserved (as "unknown", in any case) for unmatched queries'],
      ['no  face', 'reserved (as "no face", in any case) for images without a face'],
      [
        '\uff55\uff4e\uff4b\uff4e\uff4f\uff57\uff4e',
        'reserved (as "unknown", in any case) for unmatched queries',
      ],
    ] as const) {
      const error = await addFacesFromPhotos({ assertCompatible: unreachable, add: unreachable } as never, {
        identity,
        photos: [{ photo: new Uint8Array(1), source: 'a.png' }],
        detector: { detectFaces: unreachable },
        embedder: embedderThat(unreachable),
      }).catch((e: unknown) => e);
      expect(InvalidOptionsError.isInstance(error)).toBe(true);
      expect((error as Error).message).toBe(
        `addFacesFromPhotos: "${identity}" is ${why} and cannot name an identity`,
      );
    }
  });

  it('reads, decodes and detects photos one at a time, in order, reporting progress; a refused one stops the rest', async () => {
    const events: string[] = [];
    const added: unknown[][] = [];
    const store = { assertCompatible: () => undefined, add: async (...args: unknown[]) => added.push(args) };
    // Frontal landmarks and a sharp crop pass the quality checks; a photo 2 px wide shows no face.
    const landmarks: FaceDetection['landmarks'] = [
      [30, 40],
      [70, 40],
      [50, 60],
      [35, 80],
      [65, 80],
    ];
    const crop = {
      width: 8,
      height: 8,
      data: Uint8Array.from(
        { length: 192 },
        (_, i) => (((Math.floor(i / 3) % 8) + Math.floor(i / 24)) % 2) * 200,
      ),
    };
    const detector = {
      detectFaces: async (images: readonly { width: number }[]) => {
        events.push(`detect ${images.map((i) => i.width).join(',')}`);
        return images.map((image) => {
          const detection: FaceDetection = { box: [0, 0, 100, 100], score: 0.99, landmarks };
          return image.width === 2
            ? { faces: [], crops: [] }
            : { faces: [detection], crops: [{ detection, cropBox: detection.box, image: crop }] };
        });
      },
    };
    const embedder = {
      modelId: 'm',
      weightsSha256: undefined,
      dimension: 4,
      preprocessing: fakePreprocessing(8),
      embed: async (crops: readonly unknown[]) => {
        events.push(`embed ${crops.length}`);
        return crops.map((_, i) => Float32Array.of(1, i, 0, 0));
      },
    };
    const photo = (name: string, width: number) => ({
      source: name,
      photo: async () => {
        events.push(`read ${name}`);
        return { width, height: 4, data: new Uint8Array(width * 12) };
      },
    });
    const progress: unknown[] = [];
    await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [
        photo('a.png', 4),
        photo('b.png', 5),
        { photo: { width: 6, height: 4, data: new Uint8Array(72) } },
      ],
      detector,
      embedder,
      onProgress: (e) => progress.push(e),
    });
    expect(events).toEqual(['read a.png', 'detect 4', 'read b.png', 'detect 5', 'detect 6', 'embed 3']);
    expect(progress).toEqual([
      { done: 1, total: 3, source: 'a.png' },
      { done: 2, total: 3, source: 'b.png' },
      { done: 3, total: 3, source: 'photo 2' },
    ]);
    expect(added).toHaveLength(1);
    events.length = 0;
    const error = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [photo('a.png', 4), photo('empty.png', 2), photo('c.png', 4)],
      detector,
      embedder,
      // This detector finds a face in any frame wider than 2 px, so the fallback's padded frame would have one.
      precroppedFallback: false,
    }).catch((e: unknown) => e);
    expect(String(error)).toContain('no face found in empty.png');
    expect(events).toEqual(['read a.png', 'detect 4', 'read empty.png', 'detect 2']);
    expect(added).toHaveLength(1);
    // A reader's input error is named after its photo, unless it named it already.
    const tooLarge = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [
        photo('a.png', 4),
        {
          source: 'big.png',
          photo: async () => {
            throw new ImageTooLargeError('bytes', 20, 10);
          },
        },
      ],
      detector,
      embedder,
    }).catch((e: unknown) => e);
    expect(ImageTooLargeError.isInstance(tooLarge)).toBe(true);
    expect((tooLarge as Error).message).toBe(
      'big.png: Image too large: 20 bytes exceeds the limit of 10 bytes',
    );
    const named = new InvalidImageError('cannot read big.png: no such file');
    const again = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [{ source: 'big.png', photo: () => Promise.reject(named) }],
      detector,
      embedder,
    }).catch((e: unknown) => e);
    expect((again as Error).message).toBe('cannot read big.png: no such file');
  });

  it('refuses a blurred or turned-away face as enrollment skips it, naming the measure; quality: false takes it', async () => {
    const added: unknown[][] = [];
    const store = { assertCompatible: () => undefined, add: async (...args: unknown[]) => added.push(args) };
    const frontal: [number, number][] = [
      [30, 40],
      [70, 40],
      [50, 60],
      [35, 80],
      [65, 80],
    ];
    const turned: [number, number][] = [
      [30, 40],
      [70, 40],
      [70, 60],
      [35, 80],
      [65, 80],
    ];
    const flat = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(90) };
    const checker = {
      width: 8,
      height: 8,
      data: Uint8Array.from(
        { length: 8 * 8 * 3 },
        (_, i) => (((Math.floor(i / 3) % 8) + Math.floor(i / 24)) % 2) * 200 + 20,
      ),
    };
    const detectorFor = (crop: typeof flat, landmarks: [number, number][]) => ({
      detectFaces: async (images: readonly unknown[]) =>
        images.map(() => {
          const detection: FaceDetection = {
            box: [0, 0, 100, 100],
            score: 0.99,
            landmarks: landmarks as FaceDetection['landmarks'],
          };
          return { faces: [detection], crops: [{ detection, cropBox: detection.box, image: crop }] };
        }),
    });
    const embedder = constantEmbedder();
    const photo = { width: 4, height: 4, data: new Uint8Array(48) };
    const add = (detector: ReturnType<typeof detectorFor>, quality?: false) =>
      addFacesFromPhotos(store as never, {
        identity: 'alice',
        photos: [{ photo, source: 'a.png' }],
        detector,
        embedder,
        ...(quality === false ? { quality } : {}),
      }).catch((e: unknown) => e);
    expect(String(await add(detectorFor(flat, frontal)))).toContain(
      'addFacesFromPhotos: a.png: blurry (sharpness 0.0 (variance of the Laplacian), below minSharpness 10)',
    );
    expect(String(await add(detectorFor(checker, turned)))).toMatch(
      /a\.png: strong yaw \(head turned about 45°/,
    );
    expect(added).toEqual([]);
    await add(detectorFor(flat, frontal), false);
    await add(detectorFor(checker, frontal));
    expect(added).toHaveLength(2);
  });
});

const ENGLAND = '\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}';
const MOHAMMADREZA = '\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627';

describe('addFacesFromPhotos: a photo that is itself a face crop', () => {
  it('pads a small photo in which the detector finds no face and detects again, as enrollment does', async () => {
    const seen: number[] = [];
    // No face in the 40×40 photo itself; in the padded frame (40 px on each side), one covering the photo.
    const detector = {
      detectFaces: async (images: readonly { width: number; height: number }[]) =>
        images.map((image) => {
          seen.push(image.width);
          if (image.width === 40) return { faces: [], crops: [] };
          const detection: FaceDetection = {
            box: [40, 40, 80, 80],
            score: 0.99,
            landmarks: [
              [52, 54],
              [68, 54],
              [60, 62],
              [54, 70],
              [66, 70],
            ],
          };
          return { faces: [detection], crops: [] };
        }),
    };
    const added: unknown[][] = [];
    const store = { assertCompatible: () => undefined, add: async (...args: unknown[]) => added.push(args) };
    const embedder = constantEmbedder();
    const photo = { source: 'crop.png', photo: { width: 40, height: 40, data: new Uint8Array(40 * 40 * 3) } };
    const options = { identity: 'alice', photos: [photo], detector, embedder, quality: false } as const;
    await addFacesFromPhotos(store as never, options);
    expect(seen).toEqual([40, 80]);
    expect(added).toHaveLength(1);
    await expect(
      addFacesFromPhotos(store as never, { ...options, precroppedFallback: false }),
    ).rejects.toThrow('no face found in crop.png');
  });
});

describe('prepareExamples', () => {
  it('stores an example as it was stored before: the same values and id again (a copy into another store)', () => {
    // Embeddings as a model gives them, normalised in float32 (onnxruntime's ReduceL2 and Div), then prepared as
    // an add stores them, then again as a copy into another store would. Normalising twice in float64 moved 1 of
    // 32 real face embeddings by one unit in the last place, under another id each time.
    const rand = prng(7);
    let moved = 0;
    for (let k = 0; k < 2000; k++) {
      const raw = Array.from({ length: 128 }, () => gaussian(rand));
      let squares = 0;
      for (const v of raw) squares = Math.fround(squares + Math.fround(v * v));
      const length = Math.fround(Math.sqrt(squares));
      const model = Float32Array.from(raw, (v) => Math.fround(v) / length);
      const [once] = prepareExamples('test', 'ada', 128, [{ embedding: model }]);
      const [twice] = prepareExamples('test', 'ada', 128, [{ embedding: once!.embedding }]);
      if (twice!.id !== once!.id || twice!.embedding.some((v, i) => v !== once!.embedding[i])) moved++;
    }
    expect(moved).toBe(0);
  });
});

describe('storableSource', () => {
  it('keeps a source as it is, escapes control characters, and keeps the end of one too long', () => {
    expect(storableSource('people/ann/1.jpg')).toBe('people/ann/1.jpg');
    expect(storableSource('C:\\photos\\ann.jpg')).toBe('C:\\photos\\ann.jpg');
    expect(storableSource('a\nb\u0007.png')).toBe('a\\nb\\u0007.png');
    const long = `${'x/'.repeat(600)}ann.jpg`;
    expect(storableSource(long)).toBe(`…${long.slice(-1023)}`);
    expect(storableSource(long).length).toBe(1024);
  });
});

describe('sourceIssue', () => {
  it('gives the reason a store refuses a source, the same prepareExamples gives', () => {
    expect(sourceIssue('')).toBeUndefined();
    expect(sourceIssue(`photos/${'名'.repeat(MAX_SOURCE_LENGTH - 9)}😀`)).toBeUndefined();
    expect(sourceIssue('y'.repeat(MAX_SOURCE_LENGTH + 1))).toBe('is 1025 characters long; at most 1024');
    expect(sourceIssue('a\u0000.jpg')).toBe('holds a control character');
    expect(sourceIssue('a\nb.jpg')).toBe('holds a control character');
    expect(sourceIssue('lone\udc00')).toBe('is not well-formed Unicode (a lone surrogate)');
    expect(() =>
      prepareExamples('store.add', 'ann', 2, [{ embedding: Float32Array.of(1, 0), source: 'a\u0000.jpg' }]),
    ).toThrow('store.add: identity "ann" example 0: the source holds a control character');
  });
});

describe('identityNameIssue', () => {
  it('refuses invisible characters but keeps the zero-width joiners and flag tags that spell names and emoji', () => {
    for (const bad of [
      'ann\u200b',
      'an\ufeffn',
      '\ufeffann', // a byte-order mark, not "spaces at the start"
      'ann\u202enna',
      'an\u00adn',
      'ann\u2066',
      'an\u2028n',
      'a\u3164b',
      `ann${ENGLAND.slice(2)}`, // tag characters without their flag
      // Blank or joining marks that print as nothing, and variation selectors but after an emoji.
      'unknown\ufe0f',
      'no\u2800face',
      'an\u034fn',
      'an\u17b4n',
      'ann\ufffc',
      'ann\u{e0100}',
    ]) {
      expect(identityNameIssue(bad), JSON.stringify(bad)).toMatch(/invisible character/);
    }
    for (const good of [
      MOHAMMADREZA,
      '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
      'José',
      `fan ${ENGLAND}`,
      'ann \u2764\ufe0f', // a red heart in its emoji presentation
    ]) {
      expect(identityNameIssue(good), JSON.stringify(good)).toBeUndefined();
    }
  });

  it('refuses U+FFFD: a name given in bytes that were not UTF-8 would be stored as another', () => {
    // `facerec gallery add g.json "$(printf 'x\xffy')"`: Node reads the argument as "x\ufffdy".
    expect(identityNameIssue('x\ufffdy')).toBe('holds U+FFFD, the replacement for bytes that were not UTF-8');
  });
});

describe('visibleText', () => {
  it('escapes control and invisible characters and backslashes, by code point, so that a row stays one line', () => {
    expect(visibleText('two\nlines\tand\r')).toBe('two\\nlines\\tand\\r');
    expect(visibleText('bell\u0007 rtl\u202eevil zero\u200bwidth\u2028')).toBe(
      'bell\\u0007 rtl\\u202eevil zero\\u200bwidth\\u2028',
    );
    // Two names that differ print differently: a literal backslash-n is not a newline; tags by code point.
    expect(visibleText('back\\nslash')).toBe('back\\\\nslash');
    expect(visibleText('x\u{e0067}\u{e0062}')).toBe('x\\u{e0067}\\u{e0062}');
    for (const kept of ['José', MOHAMMADREZA, '\u{1f468}\u200d\u{1f469}', ENGLAND, '/faces/amy.png']) {
      expect(visibleText(kept)).toBe(kept);
    }
  });
});
