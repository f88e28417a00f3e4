import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../errors.js';
import { CONFORMANCE_EMBEDDER } from '../testing/gallery-conformance.js';
import { GalleryStoreNotFoundError } from './errors.js';
import { FileGalleryStore } from './file-store.js';
import { FileGallery } from './gallery.js';
import { openGalleryStore } from './open.js';

describe('openGalleryStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'facerec-open-store-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('opens a path or a file: URL as the file store, creating it only when asked', async () => {
    const file = path.join(dir, 'people.json');
    const missing = await openGalleryStore(file, { embedder: CONFORMANCE_EMBEDDER }).catch((e: unknown) => e);
    expect(GalleryStoreNotFoundError.isInstance(missing)).toBe(true);
    expect((missing as GalleryStoreNotFoundError).location).toBe(file);
    // The hint names the option that creates it; without an embedder, that it needs one.
    expect((missing as Error).message).toBe(
      `no gallery at ${file} (open it with \`create: true\` to create it empty)`,
    );
    await expect(openGalleryStore(file, { create: true })).rejects.toThrow(
      `no gallery at ${file}; to create it, give the embedder it is for (and \`create: true\`)`,
    );
    const created = await openGalleryStore(file, {
      embedder: CONFORMANCE_EMBEDDER,
      create: true,
      threshold: 0.7,
    });
    expect(created).toBeInstanceOf(FileGalleryStore);
    await created.add('amy', [{ embedding: [1, 0, 0, 0, 0, 0, 0, 0] }]);
    const byUrl = await openGalleryStore(pathToFileURL(file).href);
    expect(byUrl.location).toBe(file);
    expect(byUrl.threshold).toBe(0.7);
    expect(await byUrl.identities()).toEqual(['amy']);
  });

  it('logs a swapped-in version, and at warn level when it matches differently (another metric or threshold)', async () => {
    const file = path.join(dir, 'people.json');
    const version = (threshold: number, metric: 'euclidean' | 'cosine', names: string[]) =>
      writeFile(
        file,
        FileGallery.create({
          embedder: CONFORMANCE_EMBEDDER,
          threshold,
          metric,
          identities: names.map((name, i) => ({
            name,
            examples: [
              { source: `${name}.jpg`, embedding: Float32Array.from({ length: 8 }, (_, j) => +(i === j)) },
            ],
          })),
        }).toText(),
      );
    await version(0.7, 'euclidean', ['amy']);
    const logs: [string, string, Record<string, unknown>][] = [];
    const logger = {
      info: (message: string, details: Record<string, unknown> = {}) => logs.push(['info', message, details]),
      warn: (message: string, details: Record<string, unknown> = {}) => logs.push(['warn', message, details]),
    };
    const store = await openGalleryStore(file, { logger, refreshSeconds: 0 });
    await version(0.4, 'cosine', ['amy', 'bernadette']);
    await store.identities();
    expect(logs).toEqual([
      ['info', 'gallery updated', { location: file, identities: 2, metric: 'cosine', threshold: 0.4 }],
      [
        'warn',
        'gallery now matches differently',
        {
          location: file,
          changed: 'metric euclidean → cosine, threshold 0.7 → 0.4',
          // A server started with --threshold (a function with FACEREC_THRESHOLD) matches at that still.
          note: 'where a threshold is set for the server or function (--threshold, FACEREC_THRESHOLD), that one applies',
        },
      ],
    ]);
    await version(0.4, 'cosine', ['amy', 'bernadette', 'howard']);
    await store.identities();
    expect(logs.slice(2)).toEqual([
      ['info', 'gallery updated', { location: file, identities: 3, metric: 'cosine', threshold: 0.4 }],
    ]);
    // Threshold 0: never calibrated (matched at the embedder's recommended one), said so; no metric change.
    await version(0, 'cosine', ['amy', 'bernadette', 'howard']);
    await store.identities();
    expect(logs.at(-1)).toEqual([
      'warn',
      'gallery now matches differently',
      {
        location: file,
        changed: 'threshold 0.4 → none (never calibrated)',
        note: 'where a threshold is set for the server or function (--threshold, FACEREC_THRESHOLD), that one applies',
      },
    ]);
  });

  it('refuses a misspelt option for every kind of store, before opening anything', async () => {
    for (const url of [path.join(dir, 'g.json'), 's3://bucket/g.json', 'postgres://u@127.0.0.1:1/db']) {
      const options = { embedder: CONFORMANCE_EMBEDDER, create: true, refreshSecs: 5 };
      const error = await openGalleryStore(url, options as never).catch((e: unknown) => e);
      expect(InvalidOptionsError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/openGalleryStore.*refreshSecs/);
    }
    await expect(openGalleryStore(path.join(dir, 'g.json'), { create: 'yes' } as never)).rejects.toThrow(
      /openGalleryStore.*create/,
    );
  });

  it('refuses a file: URL without a path from the root, rather than reading a file of that name', async () => {
    await expect(openGalleryStore('file:people.gallery.json')).rejects.toThrow(
      'gallery store: a file: URL is absolute (file:///folder/gallery.json); for a relative path give the path itself',
    );
    // Two slashes: the folder is read as a host.
    const twoSlashes = await openGalleryStore('file://tmp/g.json').catch((e: unknown) => e);
    expect(InvalidOptionsError.isInstance(twoSlashes)).toBe(true);
    expect(String(twoSlashes)).toContain('a file URL has three slashes before an absolute path');
  });

  it('refuses a libpq keyword string without showing it (it holds a password)', async () => {
    const error = await openGalleryStore(
      'host=127.0.0.1 port=5432 user=app password=KwPw-3 dbname=faces',
    ).catch((e: unknown) => e);
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /^gallery store: a libpq keyword string is not a store location/,
    );
    expect(String((error as Error).message)).not.toContain('KwPw');
  });

  it('says a missing folder is missing, and a store URL with one slash is no file path', async () => {
    const nowhere = path.join(dir, 'no-such-folder', 'people.json');
    const error = await openGalleryStore(nowhere, { embedder: CONFORMANCE_EMBEDDER, create: true }).catch(
      (e: unknown) => e,
    );
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe(
      `gallery store: ${nowhere}: the folder ${path.dirname(nowhere)} does not exist; create it first (a file store is one file in a folder)`,
    );
    const plain = path.join(dir, 'plain');
    await writeFile(plain, '');
    await expect(openGalleryStore(path.join(plain, 'people.json'))).rejects.toThrow(
      `gallery store: ${path.join(plain, 'people.json')}: a part of ${plain} is a file, not a folder`,
    );
    for (const [url, message] of [
      ['s3:/faces/staff.gallery.json', 'an s3: URL needs two slashes after the scheme (s3://bucket/key)'],
      ['s3:faces/staff.gallery.json', 'an s3: URL needs two slashes after the scheme (s3://bucket/key)'],
      [
        'Postgres:/db/faces',
        'a postgres: URL needs two slashes after the scheme (postgres://user@host/database?collection=name)',
      ],
    ]) {
      await expect(openGalleryStore(url!, { embedder: CONFORMANCE_EMBEDDER, create: true })).rejects.toThrow(
        `gallery store: ${message}`,
      );
    }
  });

  it('names the valid schemes for an unknown one', async () => {
    await expect(openGalleryStore('ftp://host/gallery.json')).rejects.toThrow(
      'unknown store URL scheme "ftp:"; valid: a path, file:, s3:, postgres:, postgresql:',
    );
  });
});
