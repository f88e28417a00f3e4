import { EmbedderMismatchError, encodePng, FacerecError } from '@facerec/framework';
import { galleryTooLarge } from '@facerec/framework/internal';
import { fakePreprocessing } from '@facerec/framework/testing';
import { describe, expect, it } from 'vitest';
import { createCollectionsApi } from '../src/local/collections-api.js';

/** `GET /collections/default/faces<query>`'s body, from an API over `store`. */
function lister(store: object): (query: string) => Promise<unknown> {
  const api = createCollectionsApi({
    collections: { default: store as never },
    detector: { detectFaces: async () => [] },
    embedder: {} as never,
  });
  return async (query) =>
    (await api.handle({ method: 'GET', url: new URL(`http://127.0.0.1/collections/default/faces${query}`) }))
      .body;
}

/**
 * An API over `store` whose detector fails as `fail` does (where an add first touches the store), with what it
 * logged and a URL maker.
 */
function failingApi(store: object, fail: () => never) {
  const logged: [string, Record<string, unknown>][] = [];
  const log = (message: string, fields: Record<string, unknown> = {}) => logged.push([message, fields]);
  const api = createCollectionsApi({
    collections: { default: store as never },
    detector: { detectFaces: fail },
    embedder: {} as never,
    logger: { debug: log, info: log, warn: log, error: log } as never,
  });
  return { api, logged, url: (path: string) => new URL(`http://127.0.0.1${path}`) };
}

describe('collections API', () => {
  it("answers 503 with Retry-After when the collection's store cannot be reached, and logs it", async () => {
    const down = () => {
      throw new FacerecError(
        'GALLERY_UNREACHABLE',
        'cannot reach the Postgres server of postgres://app:***@db/faces?collection=default (ECONNREFUSED)',
      );
    };
    const store = {
      identities: down,
      list: down,
      removeExamples: down,
      add: down,
      assertCompatible: () => {},
    };
    const { api, logged, url } = failingApi(store, down);
    const answers = [
      await api.handle({ method: 'GET', url: url('/collections/default/faces') }),
      await api.handle({ method: 'DELETE', url: url('/collections/default/faces/abc') }),
      await api.handle({
        method: 'POST',
        url: url('/collections/default/faces'),
        body: Buffer.from(
          JSON.stringify({ identity: 'ada', image: Buffer.from('photo').toString('base64') }),
        ),
      }),
    ];
    for (const answer of answers) {
      expect(answer).toEqual({
        status: 503,
        body: { error: "the collection's store cannot be reached; retry later" },
        headers: { 'retry-after': '5' },
      });
    }
    expect(logged.map(([message, fields]) => [message, fields.reason])).toEqual(
      Array(3).fill(['collection store unreachable', 'GALLERY_UNREACHABLE']),
    );
  });

  it('answers an add that would take a gallery past its size limit 507 (full, not to be retried); one already too large to read 503', async () => {
    const tooLargeTo = (writing: boolean) => () => {
      throw galleryTooLarge(500 * 2 ** 20, '/srv/gallery.json', writing);
    };
    const post = (api: ReturnType<typeof failingApi>['api'], url: ReturnType<typeof failingApi>['url']) =>
      api.handle({
        method: 'POST',
        url: url('/collections/default/faces'),
        body: Buffer.from(
          JSON.stringify({ identity: 'ada', image: Buffer.from('photo').toString('base64') }),
        ),
      });
    // The write refused: the store is full.
    const write = tooLargeTo(true);
    const full = failingApi({ list: write, identities: write, add: write }, write);
    const added = await post(full.api, full.url);
    expect([added.status, added.headers]).toEqual([507, undefined]);
    expect(added.body).toEqual({ error: expect.stringContaining("the collection's store is full") });
    // Its path is the server's: in the log, not in the answer.
    expect(JSON.stringify(added.body)).not.toContain('/srv');
    // The file already too large to read (grown under the server): the store's problem, for an add as for a removal.
    const read = tooLargeTo(false);
    const unreadable = failingApi({ list: read, identities: read, removeExamples: read, add: read }, read);
    expect((await post(unreadable.api, unreadable.url)).status).toBe(503);
    const removed = await unreadable.api.handle({
      method: 'DELETE',
      url: unreadable.url('/collections/default/faces/abc'),
    });
    expect(removed.status).toBe(503);
    expect(
      [...full.logged, ...unreadable.logged].map(([message, fields]) => [message, fields.reason]),
    ).toEqual([
      ['collection store full', 'GALLERY_TOO_LARGE'],
      ['collection store cannot take changes', 'GALLERY_TOO_LARGE'],
      ['collection store cannot take changes', 'GALLERY_TOO_LARGE'],
    ]);
  });

  it('answers 503 when the stored gallery was replaced by one of another embedder (not a 500)', async () => {
    const replaced = () => {
      throw new EmbedderMismatchError({
        galleryModel: 'inception-resnet-v1',
        embedderModel: 'faceapi-resnet',
        galleryWeightsSha256: undefined,
        embedderWeightsSha256: undefined,
        mismatch: 'modelId',
        detail: 'another model',
      });
    };
    const store = { list: replaced, identities: replaced, removeExamples: replaced, add: replaced };
    const { api, logged, url } = failingApi(store, replaced);
    const answers = [
      await api.handle({
        method: 'POST',
        url: url('/collections/default/faces'),
        body: Buffer.from(
          JSON.stringify({ identity: 'ada', image: Buffer.from('photo').toString('base64') }),
        ),
      }),
      await api.handle({ method: 'DELETE', url: url('/collections/default/faces/abc') }),
    ];
    expect(answers.map((a) => [a.status, (a.body as { error: string }).error])).toEqual(
      Array(2).fill([503, expect.stringContaining("the collection's store cannot take changes")]),
    );
    expect(logged.map(([message, fields]) => [message, fields.reason])).toEqual(
      Array(2).fill(['collection store cannot take changes', 'EMBEDDER_MISMATCH']),
    );
  });

  it('answers 413 for a photo beyond the pixel limit, saying which limit', async () => {
    const store = { list: async () => [], identities: async () => [], assertCompatible: () => {} };
    const api = createCollectionsApi({
      collections: { default: store as never },
      detector: {
        detectFaces: async () => {
          throw new Error('not reached: refused when decoded');
        },
      },
      embedder: { preprocessing: fakePreprocessing(160) } as never,
      decodeLimits: { maxBytes: 1_000_000, maxPixels: 10_000 },
    });
    const photo = await encodePng({ width: 200, height: 100, data: new Uint8Array(200 * 100 * 3) });
    const answer = await api.handle({
      method: 'POST',
      url: new URL('http://127.0.0.1/collections/default/faces'),
      body: Buffer.from(JSON.stringify({ identity: 'ada', image: Buffer.from(photo).toString('base64') })),
    });
    expect(answer.status).toBe(413);
    expect(answer.body).toEqual({
      error: 'the photo: Image too large: 20000 pixels exceeds the limit of 10000 pixels (200×100)',
      limit: 'pixels',
      maximum: 10_000,
    });
  });

  it('lists a collection by pages: ?limit= (default 1000) and ?offset=, with the total and the next offset', async () => {
    const all = Array.from({ length: 2500 }, (_, i) => ({ id: `id${i}`, identity: `p${i % 7}`, source: '' }));
    const get = lister({ list: async () => all, identities: async () => [] }) as (
      query: string,
    ) => Promise<{ faces: { id: string }[]; total: number; next_offset: number | null }>;
    const first = await get('');
    expect([first.faces.length, first.faces[0]!.id, first.total, first.next_offset]).toEqual([
      1000,
      'id0',
      2500,
      1000,
    ]);
    const seen = [...first.faces];
    for (let next = first.next_offset; next !== null; ) {
      const page = await get(`?offset=${next}`);
      seen.push(...page.faces);
      next = page.next_offset;
    }
    expect(seen.map((f) => f.id)).toEqual(all.map((f) => f.id));
    const small = await get('?limit=10&offset=2495');
    expect([small.faces.map((f) => f.id), small.next_offset]).toEqual([
      ['id2495', 'id2496', 'id2497', 'id2498', 'id2499'],
      null,
    ]);
    expect((await get('?offset=9999')).faces).toEqual([]);
  });

  it('asks a store with listPage for the page alone (never the whole collection), a name as given, then in NFC', async () => {
    const all = Array.from({ length: 30 }, (_, i) => ({ id: `id${i}`, identity: 'Ren\u00e9e', source: '' }));
    const asked: unknown[] = [];
    const store = {
      list: async () => {
        throw new Error('list read the whole collection');
      },
      identities: async () => {
        throw new Error('identities read the whole collection');
      },
      listPage: async (o: { identity?: string; offset: number; limit: number }) => {
        asked.push(o);
        const matching = all.filter((e) => o.identity === undefined || e.identity === o.identity);
        return { examples: matching.slice(o.offset, o.offset + o.limit), total: matching.length };
      },
    };
    const get = lister(store);
    expect(await get('?limit=10&offset=25')).toEqual({
      collection: 'default',
      faces: all.slice(25),
      total: 30,
      next_offset: null,
    });
    // Renée written with a combining accent (as macOS file names are): none as given, all in NFC.
    expect(await get(`?identity=${encodeURIComponent('Rene\u0301e')}&limit=2`)).toEqual({
      collection: 'default',
      faces: all.slice(0, 2),
      total: 30,
      next_offset: 2,
    });
    expect(asked).toEqual([
      { offset: 25, limit: 10 },
      { offset: 0, limit: 2, identity: 'Rene\u0301e' },
      { offset: 0, limit: 2, identity: 'Ren\u00e9e' },
    ]);
  });

  it('refuses a body that is not UTF-8 (400), rather than storing U+FFFD in a name', async () => {
    const api = createCollectionsApi({
      collections: { default: { list: async () => [] } as never },
      detector: { detectFaces: async () => [] },
      embedder: {} as never,
    });
    const answer = await api.handle({
      method: 'POST',
      url: new URL('http://127.0.0.1/collections/default/faces'),
      body: Buffer.concat([
        Buffer.from('{"identity":"bad'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('","image":"AA=="}'),
      ]),
    });
    expect([answer.status, answer.body]).toEqual([400, { error: 'body is not valid UTF-8' }]);
  });

  it('lets other errors through (a 500 from the runtime)', async () => {
    const broken = () => {
      throw new Error('something else');
    };
    const api = createCollectionsApi({
      collections: { default: { list: broken } as never },
      detector: { detectFaces: broken },
      embedder: {} as never,
    });
    await expect(
      api.handle({ method: 'GET', url: new URL('http://127.0.0.1/collections/default/faces') }),
    ).rejects.toThrow('something else');
  });
});
