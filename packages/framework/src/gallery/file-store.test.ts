import { chmod, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../errors.js';
import { CONFORMANCE_EMBEDDER, describeGalleryStoreConformance } from '../testing/gallery-conformance.js';
import { EmbedderMismatchError, GalleryFormatError } from './errors.js';
import { FileGalleryStore } from './file-store.js';
import { FileGallery } from './gallery.js';
import { openGalleryStore } from './open.js';

const axis = (i: number) => Float32Array.from({ length: 8 }, (_, j) => (j === i ? 1 : 0));

describeGalleryStoreConformance('file store', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facerec-file-store-'));
  return {
    open: (name, embedder) =>
      FileGalleryStore.open(path.join(dir, `${name}.gallery.json`), { embedder, reloadIntervalMs: 0 }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('FileGalleryStore', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'facerec-file-store-'));
    file = path.join(dir, 'g.json');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes the gallery file format that FileGallery reads, leaving no temporary or lock files', async () => {
    const store = await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER, threshold: 0.7 });
    const [added] = await store.add('alice', [{ embedding: axis(0), source: 'a.jpg' }]);
    const gallery = await FileGallery.load(file);
    expect(gallery.names).toEqual(['alice']);
    expect(gallery.threshold).toBe(0.7);
    expect(gallery.list()).toEqual([{ id: added!.id, identity: 'alice', source: 'a.jpg' }]);
    expect(added!.added).toBe(true);
    expect(gallery.examples('alice')[0]!.embedding).toEqual(axis(0));
    expect(await readdir(dir)).toEqual(['g.json']);
  });

  it("creates gallery files readable by their owner only (biometric data), and keeps a file's permissions", async () => {
    const store = await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER });
    await store.add('alice', [{ embedding: axis(0) }]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const saved = path.join(dir, 'saved.json');
    await (await FileGallery.load(file)).save(saved);
    expect((await stat(saved)).mode & 0o777).toBe(0o600);
    // Shared on purpose (a service account's group): later writes keep it.
    await chmod(file, 0o640);
    await store.add('bob', [{ embedding: axis(1) }]);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it('needs an embedder to create a file, and opens an existing one without; a folder is no gallery file', async () => {
    await expect(FileGalleryStore.open(file)).rejects.toThrow(/no gallery at .*give the embedder/);
    await expect(FileGalleryStore.open(dir, { embedder: CONFORMANCE_EMBEDDER })).rejects.toThrow(
      new InvalidOptionsError(
        'FileGalleryStore',
        `${dir} is a folder, not a gallery file; name a file in it`,
      ),
    );
    await (await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER })).add('a', [
      { embedding: axis(1) },
    ]);
    const store = await FileGalleryStore.open(file);
    expect(await store.identities()).toEqual(['a']);
    expect(store.embedder.modelId).toBe(CONFORMANCE_EMBEDDER.modelId);
  });

  it('refuses a gallery file beyond what it can read back (one string), before reading it', async () => {
    // Sparse: 481 MiB that take no disk space. Read whole, it failed with "Invalid string length".
    await writeFile(file, '');
    await truncate(file, 481 * 2 ** 20);
    const expected = new GalleryFormatError(
      '481.0 MiB, beyond the 480 MiB a gallery file holds (it is read as one string); keep galleries this large in ' +
        'the Postgres store (postgres://…?collection=…)',
      { source: file, code: 'GALLERY_TOO_LARGE' },
    );
    await expect(FileGallery.load(file)).rejects.toThrow(expected);
    await expect(FileGalleryStore.open(file)).rejects.toMatchObject({
      code: 'GALLERY_TOO_LARGE',
      problem: 'too-large',
    });
    // Grown past the limit under a running server: refused by its own code (what `serve` logs), gallery kept.
    await rm(file);
    const errors: Error[] = [];
    const server = await FileGalleryStore.open(file, {
      embedder: CONFORMANCE_EMBEDDER,
      reloadIntervalMs: 0,
      onReloadError: (e) => errors.push(e),
    });
    await server.add('a', [{ embedding: axis(1) }]);
    await truncate(file, 481 * 2 ** 20);
    expect(await server.identities()).toEqual(['a']);
    expect(errors).toEqual([expected]);
    expect(errors[0]).toMatchObject({ code: 'GALLERY_TOO_LARGE' });
  });

  it('gives up on a lock another process holds past lockTimeoutMs, saying so', async () => {
    const store = await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER, lockTimeoutMs: 200 });
    const release = await lockfile.lock(file, { realpath: false, lockfilePath: `${file}.lock` });
    try {
      const error = await store.add('a', [{ embedding: axis(1) }]).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'GALLERY_LOCKED' });
      expect(String((error as Error).message)).toBe(
        `${file}: another process has held its lock (${file}.lock) for over 0.2 s; try again when it is done ` +
          '(a lock left by a process that died is taken over after 10 s)',
      );
    } finally {
      await release();
    }
    await store.add('a', [{ embedding: axis(1) }]);
    expect(await store.identities()).toEqual(['a']);
  });

  it("says once that a change waits for another writer's lock, then makes it; opened by path with a logger, it logs it", async () => {
    const waits: string[] = [];
    const logged: [string, Record<string, unknown>][] = [];
    const logger = {
      info: () => undefined,
      warn: (message: string, fields: Record<string, unknown> = {}) => logged.push([message, fields]),
    };
    const store = await FileGalleryStore.open(file, {
      embedder: CONFORMANCE_EMBEDDER,
      onLockWait: () => waits.push('waiting'),
    });
    const byPath = await openGalleryStore(file, { logger: logger as never });
    const release = await lockfile.lock(file, { realpath: false, lockfilePath: `${file}.lock` });
    const adds = [store.add('a', [{ embedding: axis(1) }]), byPath.add('b', [{ embedding: axis(2) }])];
    await new Promise((r) => setTimeout(r, 300));
    await release();
    await Promise.all(adds);
    expect(waits).toEqual(['waiting']);
    expect(logged).toEqual([
      [
        'gallery file locked by another writer; waiting for it',
        { location: file, lock: `${file}.lock`, stale_after_seconds: 10 },
      ],
    ]);
    // Both landed (read from the file: either handle may not have reloaded the other's change yet).
    expect((await FileGallery.load(file)).names).toEqual(['a', 'b']);
    await byPath.close();
  });

  it("picks up another process's change within the reload interval, not before", async () => {
    const server = await FileGalleryStore.open(file, {
      embedder: CONFORMANCE_EMBEDDER,
      // Long enough that opening a second store and an fsynced write fit in it on a loaded machine.
      reloadIntervalMs: 1_500,
    });
    const cli = await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER });
    expect(await server.identities()).toEqual([]);
    await cli.add('newcomer', [{ embedding: axis(3) }]);
    // Within the interval the server answers from what it has.
    expect(await server.identities()).toEqual([]);
    await new Promise((r) => setTimeout(r, 1_600));
    const [match] = await server.match([axis(3)], { threshold: 0.1 });
    expect(match!.identity).toBe('newcomer');
  });

  it('keeps its gallery when the file is replaced by a corrupt one or one of another embedder', async () => {
    const errors: Error[] = [];
    const store = await FileGalleryStore.open(file, {
      embedder: CONFORMANCE_EMBEDDER,
      reloadIntervalMs: 0,
      onReloadError: (e) => errors.push(e),
    });
    await store.add('alice', [{ embedding: axis(0) }]);
    await writeFile(file, '{"format": "facerec-gallery", "formatVersion": 1, "truncated');
    expect(await store.identities()).toEqual(['alice']);
    expect(await store.identities()).toEqual(['alice']);
    expect(errors).toHaveLength(1);
    expect(GalleryFormatError.isInstance(errors[0])).toBe(true);
    // A mutation refuses to overwrite a file it cannot read.
    await expect(store.add('bob', [{ embedding: axis(1) }])).rejects.toThrow(GalleryFormatError);

    const other = FileGallery.create({
      embedder: { ...CONFORMANCE_EMBEDDER, modelId: 'other' },
      identities: [{ name: 'mallory', examples: [{ source: '', embedding: axis(2) }] }],
    });
    await other.save(file);
    expect(await store.identities()).toEqual(['alice']);
    expect(EmbedderMismatchError.isInstance(errors[1])).toBe(true);
    expect(errors).toHaveLength(2);
  });

  it("says when it swapped in another process's change, and when the file was removed (once), keeping its gallery", async () => {
    const errors: Error[] = [];
    const reloads: number[] = [];
    const store = await FileGalleryStore.open(file, {
      embedder: CONFORMANCE_EMBEDDER,
      reloadIntervalMs: 0,
      onReloadError: (e) => errors.push(e),
      onReload: ({ identities }) => reloads.push(identities),
    });
    await store.add('alice', [{ embedding: axis(0) }]);
    expect(reloads).toEqual([]); // its own change is not a reload
    const cli = await FileGalleryStore.open(file);
    await cli.add('bob', [{ embedding: axis(1) }]);
    expect(await store.identities()).toEqual(['alice', 'bob']);
    expect(reloads).toEqual([2]);
    await rm(file);
    expect(await store.identities()).toEqual(['alice', 'bob']);
    expect(await store.identities()).toEqual(['alice', 'bob']);
    expect(errors.map((e) => [e.name, (e as { code?: string }).code, e.message])).toEqual([
      ['GalleryStoreNotFoundError', 'GALLERY_NOT_FOUND', `no gallery at ${file} (it was removed)`],
    ]);
    // Written again: read again.
    await FileGallery.create({
      embedder: CONFORMANCE_EMBEDDER,
      identities: [{ name: 'carol', examples: [{ source: '', embedding: axis(2) }] }],
    }).save(file);
    expect(await store.identities()).toEqual(['carol']);
    expect(reloads).toEqual([2, 1]);
  });

  it('two handles adding at once (as two processes would) both land, through the file lock', async () => {
    await FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER });
    const handles = await Promise.all(
      [0, 1, 2].map(() => FileGalleryStore.open(file, { embedder: CONFORMANCE_EMBEDDER })),
    );
    await Promise.all(
      handles.flatMap((h, i) =>
        [0, 1, 2, 3].map((j) => h.add(`h${i}-${j}`, [{ embedding: axis((i * 4 + j) % 8) }])),
      ),
    );
    const text = await readFile(file, 'utf8');
    expect(FileGallery.parse(text).size).toBe(12);
  });
});
