import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DetectedFaces, DetectFacesOptions, FaceDetection } from '../contracts/detector.js';
import type { EmbedderPreprocessing } from '../contracts/embedder.js';
import type { GalleryEmbedderInfo } from '../contracts/gallery.js';
import type { AddedExample, GalleryStore, StoredExample } from '../contracts/gallery-store.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { DisposedError, FacerecInputError, InvalidInputError } from '../errors.js';
import { addFacesFromPhotos, MAX_IDENTITY_NAME_LENGTH, MAX_SOURCE_LENGTH } from '../gallery/collection.js';
import { EmbedderMismatchError, UnknownExampleError, UnknownIdentityError } from '../gallery/errors.js';
import type { RgbImage } from '../image/types.js';
import { fakePreprocessing } from './fakes.js';
import { seededRandom } from './random.js';

type Awaitable<T> = T | Promise<T>;

/** One fresh, empty place for stores for one test of {@link describeGalleryStoreConformance}. */
export interface GalleryStoreConformanceHarness {
  /**
   * Opens the store called `name` for `embedder`, creating it empty when it does not exist, with a new store's
   * defaults (the suite relies on them): Euclidean metric, `nearest` aggregation, threshold 0. Opening the same
   * name again (after `close`, or while another handle is open) must reach the same content, as another
   * process would; different names are different stores.
   */
  open(name: string, embedder: GalleryEmbedderInfo): Promise<GalleryStore>;
  /** Releases what the harness holds (servers, folders). */
  dispose?(): Awaitable<void>;
}

/** The embedder every conformance store is opened for: 8-d, so vectors can be written by hand. */
export const CONFORMANCE_EMBEDDER: GalleryEmbedderInfo & { readonly preprocessing: EmbedderPreprocessing } =
  Object.freeze({
    modelId: 'conformance-embedder',
    weightsSha256: 'c'.repeat(64),
    dimension: 8,
    preprocessing: fakePreprocessing(16),
  });

const DIM = CONFORMANCE_EMBEDDER.dimension;
/** `values` spread over the first axes of an 8-d vector. */
const vec = (...values: number[]) => Float32Array.from({ length: DIM }, (_, i) => values[i] ?? 0);
/** Unit vector along axis `i`. */
const axis = (i: number) => Float32Array.from({ length: DIM }, (_, j) => (j === i ? 1 : 0));

// Distances worked out by hand (Euclidean between unit vectors: sqrt(2 − 2·cos)), for the query
// q = (0.9, 0.1, 0, …)/|·|: to e0 sqrt(2 − 2·0.9/√0.82) = 0.110601; to e1 sqrt(2 − 2·0.1/√0.82) = 1.333843;
// to (1, 0, 0, 0.2, 0, …)/√1.04, sqrt(2 − 2·0.9/(√0.82·√1.04)) = 0.225463.
const QUERY = vec(0.9, 0.1);
const TO_ALICE_1 = 0.110601;
const TO_BOB = 1.333843;
const TO_ALICE_2 = 0.225463;
/** pgvector and the SIMD kernel compute in float32. */
const TOLERANCE = 1e-4;

/** The error `promise` rejects with; a failure naming `what` (the call expected to be refused) if it resolves. */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error(`expected ${what} to be refused, but it resolved`);
    },
    (error: unknown) => error,
  );
}

/**
 * The conformance suite every {@link GalleryStore} must pass, on a fresh harness per test: a new store records
 * its embedder and is empty; examples added are listed with ids and found by `match` at the right distances;
 * identities are listed in code-unit order and each one's examples in the order added; `snapshot` (where a store has it) gives the same examples; removing an example, then an identity, changes what is found; another embedder is refused (opening,
 * `assertCompatible`, adding from photos) and a bad add adds nothing; names and sources at the limits are kept
 * as they were, and beyond them refused; concurrent adds all land, through one handle or two; two handles
 * creating the same store at once share it; everything persists across a re-open and is seen by a second handle; `addFacesFromPhotos`
 * cuts faces with the embedder's crop policy.
 *
 * A second handle must see another's change at once: a store that re-reads on an interval (the file and S3
 * stores) is opened here with that interval at 0.
 *
 * @example
 * describeGalleryStoreConformance('file store', async () => {
 *   const dir = await mkdtemp(path.join(tmpdir(), 'store-'));
 *   return {
 *     open: (name, embedder) =>
 *       FileGalleryStore.open(path.join(dir, `${name}.json`), { embedder, reloadIntervalMs: 0 }),
 *     dispose: () => rm(dir, { recursive: true, force: true }),
 *   };
 * });
 */
export function describeGalleryStoreConformance(
  name: string,
  factory: () => Awaitable<GalleryStoreConformanceHarness>,
): void {
  // Stores behind a server (a database, S3) on a small machine: past vitest's default 5 s per test.
  describe(`Gallery store conformance: ${name}`, { timeout: 60_000 }, () => {
    let harness: GalleryStoreConformanceHarness;
    const opened: GalleryStore[] = [];
    const open = async (store = 'people', embedder = CONFORMANCE_EMBEDDER) => {
      const s = await harness.open(store, embedder);
      opened.push(s);
      return s;
    };
    beforeEach(async () => {
      harness = await factory();
    }, 60_000);
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
      await harness?.dispose?.();
    });

    /** Enrolls alice (two examples) and bob (one). */
    /** New examples say this call added them; they are returned as `list` gives them (without `added`). */
    const stored = (added: readonly AddedExample[]): StoredExample[] => {
      expect(added.map((e) => e.added)).toEqual(added.map(() => true));
      return added.map(({ id, identity, source }) => ({ id, identity, source }));
    };
    const enroll = async (store: GalleryStore) => {
      const alice = stored(
        await store.add('alice', [
          { embedding: axis(0), source: 'alice/1.jpg' },
          { embedding: vec(1, 0, 0, 0.2), source: 'alice/2.jpg' },
        ]),
      );
      const bob = stored(await store.add('bob', [{ embedding: vec(0, 3), source: 'bob/1.jpg' }]));
      return { alice, bob };
    };

    it('records the embedder it was opened for, and starts empty', async () => {
      const store = await open();
      expect(store.specificationVersion).toBe(SPECIFICATION_VERSION);
      expect(store.embedder).toMatchObject({
        modelId: CONFORMANCE_EMBEDDER.modelId,
        weightsSha256: CONFORMANCE_EMBEDDER.weightsSha256,
        dimension: DIM,
      });
      expect(store.embedder.preprocessing.inputSize).toEqual({ width: 16, height: 16 });
      expect(typeof store.location).toBe('string');
      expect(await store.identities()).toEqual([]);
      expect(await store.list()).toEqual([]);
      const [match] = await store.match([QUERY], { topK: 3 });
      expect(match).toEqual({ identity: 'unknown', distance: Number.POSITIVE_INFINITY, candidates: [] });
      // A store it can reach: a health check passes (the built-in stores all have it).
      if (store.checkReachable) await store.checkReachable();
    });

    it("pages through list's order with listPage, where the store has it: each page, and the total", async () => {
      const store = await open();
      if (!store.listPage) return;
      const { alice, bob } = await enroll(store);
      await store.add('carol', [{ embedding: axis(2), source: 'carol/1.jpg' }]);
      const all = await store.list();
      expect(all).toHaveLength(4);
      for (const limit of [1, 2, 3, 10]) {
        for (let offset = 0; offset <= 5; offset++) {
          expect(await store.listPage({ offset, limit }), `offset ${offset}, limit ${limit}`).toEqual({
            examples: all.slice(offset, offset + limit),
            total: 4,
          });
        }
      }
      expect(await store.listPage({ identity: 'alice', offset: 1, limit: 5 })).toEqual({
        examples: [alice[1]],
        total: 2,
      });
      expect(await store.listPage({ identity: 'bob', offset: 0, limit: 1 })).toEqual({
        examples: bob,
        total: 1,
      });
      expect(await store.listPage({ identity: 'bob', offset: 1, limit: 1 })).toEqual({
        examples: [],
        total: 1,
      });
      expect(await store.listPage({ identity: 'nobody', offset: 0, limit: 5 })).toEqual({
        examples: [],
        total: 0,
      });
      for (const bad of [
        { offset: -1, limit: 1 },
        { offset: 0.5, limit: 1 },
        { offset: 0, limit: 0 },
        { offset: 0, limit: Number.NaN },
      ]) {
        await expect(store.listPage(bad), JSON.stringify(bad)).rejects.toMatchObject({
          code: 'INVALID_OPTIONS',
        });
      }
    });

    it('enrolls, then searches: top-k identities nearest first, with their distances', async () => {
      const store = await open();
      const { alice, bob } = await enroll(store);
      expect(alice.map((e) => [e.identity, e.source])).toEqual([
        ['alice', 'alice/1.jpg'],
        ['alice', 'alice/2.jpg'],
      ]);
      for (const e of [...alice, ...bob]) expect(e.id).toMatch(/^[0-9a-f]{24}$/);
      expect(new Set([...alice, ...bob].map((e) => e.id)).size).toBe(3);
      expect(await store.identities()).toEqual(['alice', 'bob']);
      expect(await store.list()).toEqual([...alice, ...bob]);
      expect(await store.list({ identity: 'bob' })).toEqual(bob);
      expect(await store.list({ identity: 'nobody' })).toEqual([]);

      const [match] = await store.match([QUERY], { topK: 5, threshold: 0.5 });
      expect(match!.identity).toBe('alice');
      expect(match!.distance).toBeCloseTo(TO_ALICE_1, 4);
      expect(match!.candidates.map((c) => c.identity)).toEqual(['alice', 'bob']);
      expect(Math.abs(match!.candidates[1]!.distance - TO_BOB)).toBeLessThan(TOLERANCE);
      // The store's own threshold (0 for a new store) applies when none is given: known, but too far.
      const [strict] = await store.match([QUERY]);
      expect(strict!.identity).toBe('unknown');
      expect(strict!.candidates).toHaveLength(1);
      expect(strict!.candidates[0]!.identity).toBe('alice');
      // Never calibrated means unknown even for a stored embedding itself, whatever rounding makes its distance.
      const [itself] = await store.match([axis(1)]);
      expect(itself!.identity).toBe('unknown');
      expect(itself!.candidates[0]!.identity).toBe('bob');
      // Several queries at once, answered in order.
      const both = await store.match([axis(1), QUERY], { threshold: 0.5 });
      expect(both.map((m) => m.identity)).toEqual(['bob', 'alice']);
      expect(both[0]!.distance).toBeLessThan(TOLERANCE * 10);
      // Read whole, where the store can be (calibration and copies need it): the same examples and settings.
      if (store.snapshot) {
        const whole = await store.snapshot();
        expect(whole.list()).toEqual([...alice, ...bob]);
        expect(whole.embedder).toMatchObject({ modelId: CONFORMANCE_EMBEDDER.modelId, dimension: DIM });
        expect([whole.metric, whole.aggregation, whole.threshold]).toEqual([store.metric, 'nearest', 0]);
        const [again] = await whole.match([QUERY], { threshold: 0.5 });
        expect(again!.identity).toBe('alice');
        expect(Math.abs(again!.distance - TO_ALICE_1)).toBeLessThan(TOLERANCE);
      }
    });

    it("keeps identities in code-unit order and each one's examples in the order they were added", async () => {
      const store = await open();
      // Added out of order, with a capital (before every lower-case letter in code units) and an accented name
      // (after them), and a second add to the first identity after the others.
      const zed = stored(await store.add('zed', [{ embedding: axis(0), source: 'z1' }]));
      const amy = stored(await store.add('amy', [{ embedding: axis(1), source: 'a1' }]));
      const emile = stored(await store.add('émile', [{ embedding: axis(2), source: 'e1' }]));
      const bob = stored(await store.add('Bob', [{ embedding: axis(3), source: 'b1' }]));
      const more = stored(
        await store.add('zed', [
          { embedding: axis(4), source: 'z2' },
          { embedding: axis(5), source: 'z3' },
        ]),
      );
      expect(await store.identities()).toEqual(['Bob', 'amy', 'zed', 'émile']);
      expect(await store.list()).toEqual([...bob, ...amy, ...zed, ...more, ...emile]);
      expect(await store.list({ identity: 'zed' })).toEqual([...zed, ...more]);
    });

    it('gives an example the same id every time: adding it again adds nothing', async () => {
      const store = await open();
      const { bob } = await enroll(store);
      // (0, 3, 0, …) was stored normalised: (0, 1, 0, …) is the same example.
      const again = await store.add('bob', [{ embedding: axis(1), source: 'bob/again.jpg' }]);
      expect(again.map((e) => e.id)).toEqual([bob[0]!.id]);
      // Resolved as stored: the first add's source, not this one's; and not added by this call.
      expect(again).toEqual(bob.map((e) => ({ ...e, added: false })));
      expect(await store.list({ identity: 'bob' })).toHaveLength(1);
      // The same vector under another identity is another example.
      const [carol] = await store.add('carol', [{ embedding: axis(1) }]);
      expect(carol!.id).not.toBe(bob[0]!.id);
      expect(carol!.source).toBe('');
    });

    it('removes an example, then an identity, and searches again', async () => {
      const store = await open();
      const { alice, bob } = await enroll(store);
      await store.removeExamples([alice[0]!.id]);
      expect(await store.list({ identity: 'alice' })).toEqual([alice[1]]);
      const [afterExample] = await store.match([QUERY], { threshold: 0.5 });
      expect(afterExample!.identity).toBe('alice');
      expect(Math.abs(afterExample!.distance - TO_ALICE_2)).toBeLessThan(TOLERANCE);

      expect(await store.removeIdentity('alice')).toBe(1);
      expect(await store.identities()).toEqual(['bob']);
      expect(await store.list()).toEqual(bob);
      const [afterIdentity] = await store.match([QUERY], { topK: 5, threshold: 0.5 });
      expect(afterIdentity!.identity).toBe('unknown');
      expect(afterIdentity!.candidates.map((c) => c.identity)).toEqual(['bob']);
      expect(Math.abs(afterIdentity!.distance - TO_BOB)).toBeLessThan(TOLERANCE);

      // The last example of an identity takes the identity with it.
      await store.removeExamples([bob[0]!.id]);
      expect(await store.identities()).toEqual([]);
    });

    it('refuses to remove what it does not hold, removing nothing', async () => {
      const store = await open();
      const { bob } = await enroll(store);
      const unknownIdentity = await rejection(
        store.removeIdentity('zoe'),
        'removeIdentity of an identity not held',
      );
      expect(UnknownIdentityError.isInstance(unknownIdentity)).toBe(true);
      const unknownExample = await rejection(
        store.removeExamples([bob[0]!.id, 'f00dfeedf00dfeedf00dfeed']),
        'removeExamples with an id not held',
      );
      expect(UnknownExampleError.isInstance(unknownExample)).toBe(true);
      expect(String((unknownExample as Error).message)).toContain('f00dfeedf00dfeedf00dfeed');
      expect(await store.list({ identity: 'bob' })).toEqual(bob);
    });

    it('refuses another embedder, bad embeddings and reserved names; a refused add adds nothing', async () => {
      const store = await open();
      await enroll(store);
      const other = { ...CONFORMANCE_EMBEDDER, modelId: 'another-embedder' };
      expect(() => store.assertCompatible(other)).toThrow(EmbedderMismatchError);
      const otherWeights = { ...CONFORMANCE_EMBEDDER, weightsSha256: 'd'.repeat(64) };
      expect(() => store.assertCompatible(otherWeights)).toThrow(/weights differ/);
      expect(() => store.assertCompatible(CONFORMANCE_EMBEDDER)).not.toThrow();
      const reopened = await rejection(
        harness.open('people', other),
        'opening the store for another embedder',
      );
      expect(EmbedderMismatchError.isInstance(reopened), String(reopened)).toBe(true);
      expect((reopened as EmbedderMismatchError).galleryModel).toBe(CONFORMANCE_EMBEDDER.modelId);

      const before = await store.list();
      const wrongLength = await rejection(
        store.add('dave', [{ embedding: axis(2) }, { embedding: new Float32Array(DIM - 1).fill(1) }]),
        'add of an embedding of another dimension',
      );
      expect(InvalidInputError.isInstance(wrongLength)).toBe(true);
      const zero = await rejection(
        store.add('dave', [{ embedding: new Float32Array(DIM) }]),
        'add of a zero embedding',
      );
      expect(InvalidInputError.isInstance(zero)).toBe(true);
      const notFinite = await rejection(
        store.add('dave', [{ embedding: vec(1, Number.NaN) }]),
        'add of a NaN embedding',
      );
      expect(InvalidInputError.isInstance(notFinite)).toBe(true);
      // Names and sources every store can keep and give back as they were: not too long (Postgres indexes
      // names), no control characters (Postgres refuses NUL), no lone surrogates (stored as U+FFFD).
      const tooLong = 'x'.repeat(MAX_IDENTITY_NAME_LENGTH + 1);
      // Nor two spellings of one name: spaces at either end, a decomposed (not NFC) "José", invisible characters.
      for (const bad of [
        'unknown',
        '',
        'nul\u0000name',
        'two\nlines',
        'lone\ud800',
        tooLong,
        '   ',
        ' ann',
        'Jose\u0301',
        // Invisible format characters: a zero-width space, a byte-order mark, a right-to-left override.
        'ann\u200b',
        '\ufeffann',
        'ann\u202enna',
      ]) {
        const refused = await rejection(
          store.add(bad, [{ embedding: axis(2) }]),
          `add under the identity ${JSON.stringify(bad)}`,
        );
        expect(FacerecInputError.isInstance(refused), `identity ${JSON.stringify(bad)}`).toBe(true);
        expect(String((refused as Error).message)).not.toContain(tooLong);
      }
      for (const source of ['a\u0000.jpg', 'y'.repeat(MAX_SOURCE_LENGTH + 1)]) {
        const refused = await rejection(
          store.add('dave', [{ embedding: axis(2), source }]),
          `add with the source ${JSON.stringify(source).slice(0, 40)}`,
        );
        expect(FacerecInputError.isInstance(refused), `source ${JSON.stringify(source)}`).toBe(true);
      }
      expect(FacerecInputError.isInstance(await rejection(store.add('dave', []), 'add of no examples'))).toBe(
        true,
      );
      expect(await store.list()).toEqual(before);
      // The longest name, in characters of three UTF-8 bytes each, and emoji, are kept as they were.
      const longest = '名'.repeat(MAX_IDENTITY_NAME_LENGTH - 2) + '😀';
      await store.add(longest, [{ embedding: axis(3), source: `${'s'.repeat(MAX_SOURCE_LENGTH - 2)}😀` }]);
      expect((await store.identities()).includes(longest)).toBe(true);
      expect((await (await open()).list({ identity: longest }))[0]!.source).toHaveLength(MAX_SOURCE_LENGTH);
    });

    it('lands every one of many concurrent adds', async () => {
      const store = await open();
      const random = seededRandom(14);
      const people = Array.from({ length: 24 }, (_, i) => ({
        name: `p${String(i).padStart(2, '0')}`,
        embedding: Float32Array.from({ length: DIM }, () => random() * 2 - 1),
      }));
      const added = await Promise.all(
        people.map((p) => store.add(p.name, [{ embedding: p.embedding, source: `${p.name}.jpg` }])),
      );
      // Two more examples of one identity, at once.
      await Promise.all([
        store.add('p00', [{ embedding: axis(6) }]),
        store.add('p00', [{ embedding: axis(7) }]),
      ]);
      expect(await store.identities()).toEqual(people.map((p) => p.name));
      const listed = await store.list();
      expect(listed).toHaveLength(26);
      expect(listed.filter((e) => e.identity === 'p00')).toHaveLength(3);
      const matches = await store.match(
        people.map((p) => p.embedding),
        { threshold: 0.01 },
      );
      expect(matches.map((m) => m.identity)).toEqual(people.map((p) => p.name));
      for (const m of matches) expect(m.distance).toBeLessThan(0.01);
      expect(added.flat().map((e) => e.identity)).toEqual(people.map((p) => p.name));
    });

    it('lands every add made at once through two handles, as two processes would', async () => {
      // Each handle queues its own changes one at a time; two handles on one store meet only in the store,
      // which must refuse a write based on content that changed under it (and the writer then retries).
      const [a, b] = [await open(), await open()];
      const random = seededRandom(15);
      // 10 through each (the old, immediate retries lost this 3 times in 3): a handle whose copy is current (a cheap re-check) must not win every race for as
      // long as it keeps writing, or the other one runs out of retries.
      const people = Array.from({ length: 20 }, (_, i) => ({
        name: `q${String(i).padStart(2, '0')}`,
        embedding: Float32Array.from({ length: DIM }, () => random() * 2 - 1),
      }));
      await Promise.all(
        people.map((p, i) =>
          (i % 2 ? b : a).add(p.name, [{ embedding: p.embedding, source: `${p.name}.jpg` }]),
        ),
      );
      const third = await open();
      expect(await third.identities(), 'identities after 20 adds split over two handles').toEqual(
        people.map((p) => p.name),
      );
      expect(await third.list(), 'examples after 20 adds split over two handles').toHaveLength(20);
      // The same example through both at once is stored once, and exactly one of the two says it added it.
      const same = [{ embedding: people[0]!.embedding.map((v) => -v), source: 'both.jpg' }];
      const both = await Promise.all([a.add('both', same), b.add('both', same)]);
      expect(both.map(([e]) => e!.id)).toEqual([both[0]![0]!.id, both[0]![0]!.id]);
      expect(both.map(([e]) => e!.added).sort()).toEqual([false, true]);
      expect(await (await open()).list({ identity: 'both' })).toHaveLength(1);
    });

    it('opens a store two processes create at once, both on the same content; closing twice is harmless', async () => {
      const [a, b] = await Promise.all([open('created-together'), open('created-together')]);
      // Exactly one of them created it (a store that says), and a later open did not.
      if (a.created !== undefined) expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
      await a.add('alice', [{ embedding: axis(0) }]);
      const later = await open('created-together');
      if (later.created !== undefined) expect(later.created).toBe(false);
      expect(await later.identities()).toEqual(['alice']);
      expect((await b.match([axis(0)], { threshold: 0.1 }))[0]!.identity).toBe('alice');
      await a.close();
      await a.close();
    });

    it('lets the calls made before close finish, then refuses every call with DisposedError', async () => {
      const store = await open('closing');
      let settled = 0;
      const calls = [
        store.add('alice', [{ embedding: axis(0) }]),
        store.identities(),
        store.match([axis(1)]),
      ];
      const count = () => settled++;
      for (const call of calls) void call.then(count, count);
      await store.close();
      // Finished by the time close resolved (not cut off, not left pending), and the add landed.
      expect(settled).toBe(calls.length);
      expect(await calls[0]).toHaveLength(1);
      const after: [string, () => Promise<unknown>][] = [
        ['add', () => store.add('bob', [{ embedding: axis(1) }])],
        ['match', () => store.match([axis(0)])],
        ['identities', () => store.identities()],
        ['list', () => store.list()],
        ['removeIdentity', () => store.removeIdentity('alice')],
      ];
      if (store.setThreshold) after.push(['setThreshold', () => store.setThreshold!(0.5)]);
      if (store.checkReachable) after.push(['checkReachable', () => store.checkReachable!()]);
      for (const [name, call] of after) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(DisposedError.isInstance(error), `${name} after close: ${String(error)}`).toBe(true);
      }
      const reopened = await open('closing');
      expect(await reopened.identities()).toEqual(['alice']);
      expect(reopened.threshold).not.toBe(0.5);
    });

    it("persists across a re-open, and a second handle sees the first one's changes", async () => {
      const first = await open();
      const { alice, bob } = await enroll(first);
      const [before] = await first.match([QUERY], { topK: 2, threshold: 0.5 });
      await first.close();
      opened.splice(opened.indexOf(first), 1);

      const reopened = await open();
      expect(await reopened.list()).toEqual([...alice, ...bob]);
      const [after] = await reopened.match([QUERY], { topK: 2, threshold: 0.5 });
      expect(after!.identity).toBe(before!.identity);
      after!.candidates.forEach((c, i) => {
        expect(c.identity).toBe(before!.candidates[i]!.identity);
        expect(Math.abs(c.distance - before!.candidates[i]!.distance)).toBeLessThan(1e-6);
      });

      const second = await open();
      await second.add('carol', [{ embedding: axis(2), source: 'carol.jpg' }]);
      await reopened.removeIdentity('bob');
      const third = await open();
      expect((await third.list()).map((e: StoredExample) => e.identity)).toEqual(['alice', 'alice', 'carol']);
      // Different names are different stores.
      const elsewhere = await open('others');
      expect(await elsewhere.list()).toEqual([]);
    });

    it("adds faces from photos: detect with the embedder's crop policy, embed, add all or nothing", async () => {
      const store = await open();
      const seen: (DetectFacesOptions | undefined)[] = [];
      // A checkerboard (sharp, so the blur check passes) whose first pixel is `value`.
      const crop = (value: number): RgbImage => ({
        width: 16,
        height: 16,
        data: Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => {
          const p = Math.floor(i / 3);
          return ((p % 16) + Math.floor(p / 16)) % 2 ? (value + 100) % 256 : value;
        }),
      });
      // A photo's first pixel says how many faces it shows; its second, which axis each face embeds to.
      const detector = {
        async detectFaces(
          images: readonly RgbImage[],
          options?: DetectFacesOptions,
        ): Promise<DetectedFaces[]> {
          seen.push(options);
          return images.map((image) => {
            const count = image.data[0]!;
            const faces: FaceDetection[] = Array.from({ length: count }, (_, i) => ({
              box: [0, 0, 10 + i * 10, 10 + i * 10],
              score: 0.99,
              landmarks: [
                [1, 1],
                [2, 1],
                [1.5, 2],
                [1, 3],
                [2, 3],
              ],
            }));
            const crops = faces.map((detection, i) => ({
              detection,
              cropBox: detection.box,
              image: crop(image.data[1]! + i),
            }));
            return { faces, crops };
          });
        },
      };
      let embedded = 0;
      const embedder = {
        ...CONFORMANCE_EMBEDDER,
        async embed(crops: readonly RgbImage[]) {
          embedded += crops.length;
          return crops.map((c) => axis(c.data[0]! % DIM));
        },
      };
      const photo = (faces: number, firstAxis: number): RgbImage => ({
        width: 4,
        height: 4,
        data: Uint8Array.from({ length: 48 }, (_, i) => (i === 0 ? faces : i === 1 ? firstAxis : 0)),
      });

      const added = await addFacesFromPhotos(store, {
        identity: 'erin',
        photos: [
          { photo: photo(1, 3), source: 'erin-1.png' },
          { photo: photo(2, 4), source: 'erin-group.png' },
        ],
        detector,
        embedder,
        multipleFaces: 'largest',
      });
      expect(seen[0]?.crop).toEqual(CONFORMANCE_EMBEDDER.preprocessing.crop);
      expect(added.map((e) => e.source)).toEqual(['erin-1.png', 'erin-group.png']);
      // The group photo's largest face is its second (axis 4 + 1).
      const [m3, m5] = await store.match([axis(3), axis(5)], { threshold: 0.01 });
      expect([m3!.identity, m5!.identity]).toEqual(['erin', 'erin']);

      const noFace = await rejection(
        addFacesFromPhotos(store, {
          identity: 'frank',
          photos: [{ photo: photo(1, 6) }, { photo: photo(0, 0), source: 'empty.png' }],
          detector,
          embedder,
        }),
        'addFacesFromPhotos with a photo without a face',
      );
      expect(InvalidInputError.isInstance(noFace)).toBe(true);
      expect(String((noFace as Error).message)).toContain('empty.png');
      const several = await rejection(
        addFacesFromPhotos(store, {
          identity: 'frank',
          photos: [{ photo: photo(2, 6) }],
          detector,
          embedder,
        }),
        'addFacesFromPhotos with a photo of several faces',
      );
      expect(InvalidInputError.isInstance(several)).toBe(true);
      const before = embedded;
      const mismatched = await rejection(
        addFacesFromPhotos(store, {
          identity: 'frank',
          photos: [{ photo: photo(1, 6) }],
          detector,
          embedder: { ...embedder, modelId: 'another-embedder' },
        }),
        'addFacesFromPhotos with another embedder',
      );
      expect(EmbedderMismatchError.isInstance(mismatched)).toBe(true);
      expect(embedded).toBe(before);
      expect(await store.identities()).toEqual(['erin']);
    });
  });
}
