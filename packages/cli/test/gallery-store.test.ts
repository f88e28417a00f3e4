import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CACHE_DIR_ENV,
  encodePng,
  FileGallery,
  FileGalleryStore,
  MODELS_MIRROR_ENV,
} from '@facerec/framework';
import { describeWithSharedData, seededRandom, sharedPath } from '@facerec/framework/testing';
import lockfile from 'proper-lockfile';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startPgliteServer } from '../../gallery-postgres/test/pglite-server.js';
import { startLocalS3, TEST_BUCKET } from '../../gallery-s3/test/s3rver.js';
import { serveLocally } from '../src/index.js';
import { addBbtPeople, cli, cliChild, freePort, recogniseOver } from './helpers.js';

const bbt = (name: string, n: number) => sharedPath('faces', 'face-api.js', 'bbt', name, `${name}${n}.png`);

interface Listed {
  store: string;
  modelId: string;
  identities: number;
  calibration: unknown;
  examples: { id: string; identity: string; source: string }[];
}
interface Searched {
  image: string;
  identity: string;
  distance: number;
  candidates: { identity: string; distance: number }[];
}

describeWithSharedData(
  'facerec gallery add|remove|list|search',
  ['faces/face-api.js/bbt', 'faces/face-api.js/test/white.png', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    const stops: (() => Promise<void>)[] = [];
    const stores: Record<string, () => string> = {};

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-cli-store-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      const s3 = await startLocalS3();
      const pg = await startPgliteServer();
      stops.push(s3.stop, pg.stop);
      vi.stubEnv('FACEREC_S3_ENDPOINT', s3.endpoint);
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
      vi.stubEnv('AWS_REGION', 'us-east-1');
      stores.file = () => path.join(work, 'people.gallery.json');
      stores.s3 = () => `s3://${TEST_BUCKET}/cli/people.gallery.json`;
      stores.postgres = () => `${pg.connectionString}?collection=people&search=exact`;
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      for (const stop of stops) await stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    for (const kind of ['file', 's3', 'postgres']) {
      describe(`${kind} store`, () => {
        it('is served by `facerec serve --gallery <store>` (an S3 store at $FACEREC_S3_ENDPOINT)', async () => {
          const store = stores[kind]!().replace(/people(\.gallery\.json)?/, 'served$1');
          await addBbtPeople(store, ['amy']);
          const served = await serveLocally({ gallery: store, port: 0, quiet: true, workers: 0 });
          try {
            expect(await recogniseOver(served.runtime.url, bbt('amy', 3), `served-${kind}`)).toBe('amy');
            // The collections API's name: a Postgres collection's own, and no other (it would say one and write
            // to another).
            expect(served.collection).toBe(kind === 'postgres' ? 'served' : 'default');
            // GET /health asks the store (a 503 while it cannot be reached: see the runtime's and stores' tests).
            const health = await fetch(`${served.runtime.url}/health`);
            expect([health.status, ((await health.json()) as { checks: unknown }).checks]).toEqual([
              200,
              { gallery: { ok: true } },
            ]);
          } finally {
            await served.close();
          }
          if (kind === 'postgres') {
            const other = serveLocally({
              gallery: store,
              port: 0,
              quiet: true,
              workers: 0,
              collection: 'staff',
            });
            await expect(other).rejects.toThrow(
              /--collection staff: the gallery is the Postgres collection "served", served under that name; leave --collection out/,
            );
          }
        });

        it('is calibrated in place by `facerec gallery calibrate --gallery <store>`', async () => {
          const store = stores[kind]!().replace(/people(\.gallery\.json)?/, 'calibrated$1');
          await addBbtPeople(store, ['amy', 'raj']);
          // Probes not enrolled: amy's and raj's other photos (genuine), two people not in the store.
          const probes = path.join(work, `probes-${kind}`);
          for (const [name, n] of [
            ['amy', 3],
            ['amy', 4],
            ['raj', 3],
            ['raj', 4],
            ['penny', 1],
            ['howard', 1],
          ] as const) {
            await mkdir(path.join(probes, name), { recursive: true });
            await symlink(bbt(name, n), path.join(probes, name, `${name}${n}.png`));
          }
          const run = await cli(
            'gallery',
            'calibrate',
            probes,
            '--gallery',
            store,
            '--target-far',
            '0.1',
            '--json',
          );
          expect([run.code, run.stderr]).toEqual([0, expect.not.stringMatching(/\n\s+at /)]);
          const calibrated = JSON.parse(run.stdout) as {
            out: string;
            threshold: number;
            genuinePairs: number;
          };
          expect(calibrated.genuinePairs).toBe(4);
          expect(calibrated.out).not.toContain(':pw@');
          const listed = JSON.parse((await cli('gallery', 'list', store, '--json')).stdout) as {
            threshold: number;
            thresholdSource: string;
            calibration: { genuinePairs: number } | null;
          };
          expect(listed).toMatchObject({ threshold: calibrated.threshold, thresholdSource: 'gallery' });
          expect(listed.calibration?.genuinePairs).toBe(4);
          if (kind === 'file') return;
          // --out is for files.
          const out = await cli(
            'gallery',
            'calibrate',
            probes,
            '--gallery',
            store,
            '--out',
            path.join(work, 'x.json'),
          );
          expect([out.code, out.stderr]).toEqual([
            2,
            "facerec: gallery calibrate: --out is for gallery files; a store's threshold is set in the store itself\n",
          ]);
        });

        it('enrolls, searches, removes and searches again; --json output', async () => {
          const store = stores[kind]!();
          const add = await cli(
            'gallery',
            'add',
            store,
            'amy',
            bbt('amy', 1),
            bbt('amy', 2),
            '--embedder',
            'faceapi-resnet',
            '--threshold',
            '0.5',
            '--json',
          );
          expect(add.stderr).not.toMatch(/\n\s+at /);
          expect([add.code, add.exitCode]).toEqual([0, undefined]);
          const added = JSON.parse(add.stdout) as {
            created: boolean;
            added: { id: string; source: string }[];
          };
          expect(added.created).toBe(true);
          expect(added.added.map((a) => a.source)).toEqual([bbt('amy', 1), bbt('amy', 2)]);
          // A second person into the existing store: its embedder is read from the store.
          // The same photo twice in one call: one example, and the JSON says one photo repeated another.
          const again = await cli('gallery', 'add', store, 'raj', bbt('raj', 1), bbt('raj', 1), '--json');
          expect(again.code).toBe(0);
          expect(JSON.parse(again.stdout)).toMatchObject({ created: false, repeated: 1 });
          expect(JSON.parse(again.stdout).added).toHaveLength(1);
          expect(again.stderr).toContain('1 photo repeated the face of another photo given, counted once');

          const list = await cli('gallery', 'list', store, '--json');
          expect(list.code).toBe(0);
          const listed = JSON.parse(list.stdout) as Listed;
          expect(listed.modelId).toBe('faceapi-resnet');
          expect(listed.identities).toBe(2);
          expect(listed.calibration).toBeNull(); // never calibrated
          expect(listed.examples.map((e) => e.identity)).toEqual(['amy', 'amy', 'raj']);
          expect(listed.examples.map((e) => e.id)).toEqual(
            added.added.map((a) => a.id).concat(listed.examples[2]!.id),
          );

          const search = await cli(
            'gallery',
            'search',
            store,
            bbt('amy', 3),
            bbt('raj', 3),
            '--top-k',
            '2',
            '--json',
          );
          expect(search.code).toBe(0);
          const found = JSON.parse(search.stdout) as Searched[];
          expect(found.map((f) => f.identity)).toEqual(['amy', 'raj']);
          for (const f of found) {
            expect(f.candidates).toHaveLength(2);
            expect(f.candidates[0]!.distance).toBe(f.distance);
            expect(f.distance).toBeLessThan(0.5);
            expect(f.candidates[1]!.distance).toBeGreaterThan(f.distance);
          }

          const text = await cli('gallery', 'list', store);
          expect(
            text.stdout
              .trim()
              .split('\n')
              .map((l) => l.split('\t').slice(1, 2)[0]),
          ).toEqual(['amy', 'amy', 'raj']);
          // The summary line shows the threshold as matching applies it (set at creation, never calibrated).
          expect(text.stderr).toContain('3 examples shown (faceapi-resnet, euclidean, threshold 0.5)');

          const removeOne = await cli(
            'gallery',
            'remove',
            store,
            '--example',
            listed.examples[0]!.id,
            '--json',
          );
          expect([removeOne.code, JSON.parse(removeOne.stdout).removed]).toEqual([0, 1]);
          const remove = await cli('gallery', 'remove', store, '--identity', 'amy', '--json');
          expect([remove.code, JSON.parse(remove.stdout).removed]).toEqual([0, 1]);
          const after = await cli('gallery', 'search', store, bbt('amy', 3), '--json');
          const [gone] = JSON.parse(after.stdout) as Searched[];
          expect(gone!.identity).toBe('unknown');
          expect(gone!.candidates.map((c) => c.identity)).toEqual(['raj']);

          // Emptied: said before the search; every image has its row in the JSON, as in recognize's (an image
          // without a face, one that is not there: both were left out).
          expect((await cli('gallery', 'remove', store, '--identity', 'raj')).code).toBe(0);
          const grey = path.join(work, `grey-${kind}.png`);
          await writeFile(
            grey,
            await encodePng({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(128) }),
          );
          const absent = path.join(work, 'absent.png');
          const empty = await cli('gallery', 'search', store, bbt('amy', 3), grey, absent, '--json');
          expect([empty.code, empty.exitCode]).toEqual([0, 2]);
          expect(empty.stderr).toContain('holds no identities yet, so every face will be "unknown"');
          expect(JSON.parse(empty.stdout)).toEqual([
            expect.objectContaining({
              image: bbt('amy', 3),
              identity: 'unknown',
              distance: null,
              candidates: [],
            }),
            { image: grey, box: null, identity: 'no face', distance: null, candidates: [] },
            { image: absent, error: expect.stringContaining('no such file') },
          ]);
        });
      });
    }

    it('refuses bad usage and bad input with exit 2, changing nothing', async () => {
      const store = path.join(work, 'usage.gallery.json');
      const created = await cli(
        'gallery',
        'add',
        store,
        'amy',
        bbt('amy', 1),
        '--embedder',
        'faceapi-resnet',
      );
      expect(created.code).toBe(0);
      expect((await cli('gallery', 'remove', store)).code).toBe(2);
      // An endpoint without its scheme is named as such (the SDK said "Invalid URL").
      const endpoint = process.env.FACEREC_S3_ENDPOINT;
      vi.stubEnv('FACEREC_S3_ENDPOINT', '127.0.0.1:9000');
      const noScheme = await cli('gallery', 'list', `s3://${TEST_BUCKET}/x.json`);
      vi.stubEnv('FACEREC_S3_ENDPOINT', endpoint);
      expect([noScheme.code, noScheme.stderr]).toEqual([
        2,
        'facerec: gallery store: $FACEREC_S3_ENDPOINT must be an http:// or https:// URL (e.g. http://127.0.0.1:9000), got "127.0.0.1:9000"\n',
      ]);
      // An endpoint with a path would prefix every key (a second gallery, created where nobody looks).
      vi.stubEnv('FACEREC_S3_ENDPOINT', `${endpoint}/${TEST_BUCKET}`);
      const withPath = await cli('gallery', 'list', `s3://${TEST_BUCKET}/x.json`);
      vi.stubEnv('FACEREC_S3_ENDPOINT', endpoint);
      expect([withPath.code, withPath.stderr]).toEqual([
        2,
        expect.stringMatching(
          /^facerec: .*endpoint: give the server without a path, e\.g\. http:\/\/127\.0\.0\.1:9000 /,
        ),
      ]);
      expect((await cli('gallery', 'remove', store, '--identity', 'amy', '--example', 'x')).code).toBe(2);
      expect((await cli('gallery', 'add', store, 'amy')).code).toBe(2);
      // Named as the command, not the library function behind it.
      const spaced = await cli('gallery', 'add', store, 'amy ', bbt('amy', 1));
      expect([spaced.code, spaced.stderr]).toEqual([
        2,
        expect.stringMatching(/^facerec: gallery add: the identity name has spaces at the start or end/),
      ]);
      expect((await cli('gallery', 'search', store, bbt('amy', 3), '--top-k', '0')).code).toBe(2);
      const missing = await cli('gallery', 'list', path.join(work, 'missing.json'));
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('no gallery at');
      expect(missing.stderr).toContain('`facerec gallery add');
      // recognize and calibrate read gallery files; client reads a folder of frames.
      const nowhere = path.join(work, 'nowhere.json');
      for (const args of [
        ['recognize', bbt('amy', 1), '--gallery', nowhere],
        ['gallery', 'calibrate', work, '--gallery', nowhere],
      ]) {
        const run = await cli(...args);
        expect(run.code).toBe(2);
        expect(run.stderr).toBe(
          `facerec: no gallery at ${nowhere} (create it with \`facerec enroll <dir> --out ${nowhere}\` or ` +
            `\`facerec gallery add ${nowhere} <identity> <photo…> --embedder <id>\`)\n`,
        );
      }
      for (const [frames, what] of [
        [path.join(work, 'no-frames'), 'does not exist'],
        [bbt('amy', 1), 'is a file'],
      ] as const) {
        const run = await cli('client', '--url', 'http://127.0.0.1:9', '--frames', frames);
        expect(run.code).toBe(2);
        expect(run.stderr).toContain(`frames: ${frames} ${what}; give a folder`);
      }
      // An image too large for any endpoint's body limit is named before anything is read or sent.
      const large = path.join(work, 'large-frames');
      await mkdir(large);
      await writeFile(path.join(large, 'big.jpg'), '');
      await truncate(path.join(large, 'big.jpg'), 5 * 2 ** 20);
      const tooLarge = await cli('client', '--url', 'http://127.0.0.1:9', '--frames', large);
      expect(tooLarge.code).toBe(2);
      expect(tooLarge.stderr).toContain(
        `frames: ${path.join(large, 'big.jpg')} is 5.0 MiB (5242880 bytes); a frame's request body`,
      );
      // For a serve started with --max-image-bytes: --max-frame-bytes sends larger frames.
      const nobody = `http://127.0.0.1:${await freePort()}`;
      const client = (...args: string[]) => cli('client', '--url', nobody, '--frames', large, ...args);
      const stillLarge = await client('--max-frame-bytes', '5000000');
      expect(stillLarge.stderr).toContain(
        `frames: ${path.join(large, 'big.jpg')} is 5.0 MiB (5242880 bytes); over the 5000000 bytes allowed to a frame (maxFileBytes: the client's --max-frame-bytes)`,
      );
      const taken = await client('--max-frame-bytes', '6000000', '--wait', '0');
      expect(taken.stderr).not.toContain('frames:');
      expect(taken.stderr).toContain(`nothing answers at ${nobody} (ECONNREFUSED)`);
      const unknownIdentity = await cli('gallery', 'remove', store, '--identity', 'nobody');
      expect(unknownIdentity.code).toBe(2);
      expect(unknownIdentity.stderr).toMatch(
        new RegExp(
          `^facerec: ${store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the gallery has no identity "nobody" \\(it holds \\d+ identit`,
          'm',
        ),
      );
      const unknownExample = await cli('gallery', 'remove', store, '--example', 'f00dfeedf00dfeedf00dfeed');
      expect([unknownExample.code, unknownExample.stderr]).toEqual([
        2,
        expect.stringContaining(`${store}: the gallery has no example "f00dfeedf00dfeedf00dfeed"`),
      ]);
      const white = sharedPath('faces', 'face-api.js', 'test', 'white.png');
      const noFace = await cli('gallery', 'add', store, 'penny', bbt('penny', 1), white);
      expect(noFace.code).toBe(2);
      expect(noFace.stderr).toContain(`no face found in ${white}`);
      // A group photo whose faces are all below the embedder's minimum size (40–74 px against 75): refused,
      // with or without --largest, as enrollment skips it.
      const group = sharedPath('faces', 'face-api.js', 'bbt3.jpg');
      for (const extra of [[], ['--largest']]) {
        const small = await cli('gallery', 'add', store, 'penny', group, ...extra);
        expect(small.code).toBe(2);
        expect(small.stderr).toContain(`the largest face in ${group} is too small (74 px, below 75 px`);
      }
      // Another embedder named for an existing store: refused before that model is loaded (inception-resnet-v1's
      // weights are not installed here, so loading it first would fail with a download error instead).
      const other = await cli(
        'gallery',
        'add',
        store,
        'penny',
        bbt('penny', 1),
        '--embedder',
        'inception-resnet-v1',
      );
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(
        `${store} holds faceapi-resnet embeddings; --embedder inception-resnet-v1 cannot add to it (leave --embedder out`,
      );
      // Settings of a new store, given for an existing one: added, and said that they were not applied.
      const settings = await cli(
        'gallery',
        'add',
        store,
        'penny',
        bbt('penny', 1),
        '--threshold',
        '0.9',
        '--metric',
        'cosine',
      );
      expect(settings.code, settings.stderr).toBe(0);
      expect(settings.stderr).toContain(
        `warning: --metric and --threshold apply to a new store only: ${store} keeps its metric (euclidean) and its threshold ` +
          "(never calibrated: matched at faceapi-resnet's recommended threshold 0.448; `facerec gallery calibrate <photos> --gallery <store>` sets one from labelled photos)",
      );
      expect((await cli('gallery', 'remove', store, '--identity', 'penny')).code).toBe(0);
      // A photo that is missing or not an image is named.
      const absent = path.join(work, 'absent.png');
      const notThere = await cli('gallery', 'add', store, 'penny', bbt('penny', 1), absent);
      expect(notThere.code).toBe(2);
      expect(notThere.stderr).toContain(`cannot read ${absent}: no such file`);
      const notes = path.join(work, 'notes.png');
      await writeFile(notes, 'not an image');
      const text = await cli('gallery', 'add', store, 'penny', bbt('penny', 1), notes);
      expect(text.code).toBe(2);
      expect(text.stderr).toContain(`facerec: ${notes}: Not an image`);
      const reserved = await cli('gallery', 'add', store, 'unknown', bbt('penny', 1));
      expect(reserved.code).toBe(2);
      const list = await cli('gallery', 'list', store, '--json');
      expect((JSON.parse(list.stdout) as Listed).examples.map((e) => e.identity)).toEqual(['amy']);
      expect(JSON.parse(list.stdout)).toMatchObject({ threshold: 0.448, thresholdSource: 'registry' });
      // Never calibrated (threshold 0 stored): the summary names the threshold matching uses, not 0.
      expect(list.stderr).toContain(
        "never calibrated: matched at faceapi-resnet's recommended threshold 0.448",
      );
      // The same photo again: nothing new, and the report says so.
      const again = await cli('gallery', 'add', store, 'amy', bbt('amy', 1));
      expect(again.code).toBe(0);
      expect(again.stderr).toContain('added 0 examples of amy (1 already there, unchanged)');
      // A refused add to a store that does not exist yet creates nothing.
      const fresh = path.join(work, 'never.gallery.json');
      const refused = await cli('gallery', 'add', fresh, 'penny', white, '--embedder', 'faceapi-resnet');
      expect(refused.code).toBe(2);
      expect(existsSync(fresh)).toBe(false);
    });

    it('refuses to write to an S3 server that ignores conditional writes, unless $FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES=1', async () => {
      const stock = await startLocalS3({ conditionalWrites: false });
      const endpoint = process.env.FACEREC_S3_ENDPOINT;
      vi.stubEnv('FACEREC_S3_ENDPOINT', stock.endpoint);
      try {
        const store = `s3://${TEST_BUCKET}/stock.gallery.json`;
        const add = (n: number) =>
          cli('gallery', 'add', store, 'amy', bbt('amy', n), '--embedder', 'faceapi-resnet');
        const refused = await add(1);
        expect([refused.code, refused.stderr]).toEqual([
          1,
          expect.stringContaining(`ignores conditional writes (it stored a PUT whose If-Match did not hold)`),
        ]);
        expect(refused.stderr).not.toMatch(/\n\s+at /);
        vi.stubEnv('FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES', 'yes');
        expect(await add(1)).toMatchObject({
          code: 2,
          stderr: expect.stringContaining('$FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES must be 1 or 0'),
        });
        vi.stubEnv('FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES', '1');
        const unchecked = await add(1);
        expect(unchecked.code).toBe(0);
        expect(unchecked.stderr).toContain(
          `warning: $FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES is set: writes to ${store} are not checked against another writer's, so of two changes made at once one can be lost`,
        );
        expect((await cli('gallery', 'list', store)).code).toBe(0);
      } finally {
        vi.stubEnv('FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES', '');
        vi.stubEnv('FACEREC_S3_ENDPOINT', endpoint);
        await stock.stop();
      }
    });

    it('gallery copy moves a file gallery into a new Postgres collection and back, whole; it never merges', async () => {
      const file = path.join(work, 'to-copy.gallery.json');
      await addBbtPeople(file, ['amy', 'raj']);
      const collection = stores.postgres!().replace('collection=people', 'collection=copied');
      const run = await cli('gallery', 'copy', file, collection, '--json');
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ identities: 2, examples: 4, threshold: 0.4 });
      // The count, then the index build it waits for, said as it starts (no count to show there).
      expect(run.stderr).toMatch(/copying: 4\/4\n {2}building the search index \(HNSW\) over 4 examples…\n/);
      const list = async (store: string) => {
        const listed = await cli('gallery', 'list', store, '--json');
        expect(listed.code, listed.stderr).toBe(0);
        return JSON.parse(listed.stdout) as Listed & { threshold: number };
      };
      const [original, copied] = [await list(file), await list(collection)];
      // Ids are a hash of identity and embedding: the same examples, in every store.
      expect(copied.examples).toEqual(original.examples);
      expect([copied.modelId, copied.threshold]).toEqual([original.modelId, 0.4]);
      // Into what exists: refused, before anything is read or written.
      const again = await cli('gallery', 'copy', file, collection);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(
        /exists: copy into a new collection \(nothing is merged\), or remove it first/,
      );
      expect(again.stderr).toContain(`facerec gallery remove '${collection}' --collection`);
      // Before the source is read: a source that is not there is not even looked at.
      const unread = await cli('gallery', 'copy', path.join(work, 'no-such.gallery.json'), collection);
      expect(unread.stderr).toMatch(/exists: copy into a new collection/);
      const back = path.join(work, 'copied-back.gallery.json');
      expect((await cli('gallery', 'copy', collection, back)).code).toBe(0);
      expect((await list(back)).examples).toEqual(original.examples);
      const onto = await cli('gallery', 'copy', collection, back);
      expect([onto.code, onto.stderr]).toEqual([
        2,
        `facerec: gallery copy: ${back} exists: copy into a new file (nothing is merged)\n`,
      ]);
      // The collection removed whole, then copied again.
      const removed = await cli('gallery', 'remove', collection, '--collection', '--json');
      expect(removed.code, removed.stderr).toBe(0);
      expect(JSON.parse(removed.stdout)).toMatchObject({ removed: 4 });
      expect(removed.stderr).toMatch(/: removed the collection and its 4 examples\n$/);
      // The command it suggests is the URL given, every parameter kept (search=exact here).
      expect((await cli('gallery', 'list', collection)).stderr).toContain(
        `(create it with \`facerec gallery add '${collection}' <identity>`,
      );
      expect((await cli('gallery', 'copy', file, collection)).code).toBe(0);
      expect((await list(collection)).examples).toEqual(original.examples);
      expect((await cli('gallery', 'remove', file, '--collection')).stderr).toMatch(
        /--collection removes a Postgres collection; .* is a gallery file or object: delete it/,
      );
      // Ctrl-C: the copy, one transaction, stops and leaves nothing.
      const source = await FileGallery.load(file);
      const random = seededRandom(3);
      const big = path.join(work, 'big.gallery.json');
      await FileGallery.create({
        embedder: source.embedder,
        identities: Array.from({ length: 6000 }, (_, i) => ({
          name: `person-${i}`,
          examples: [
            {
              source: `p${i}.png`,
              embedding: Float32Array.from({ length: source.embedder.dimension }, () => random() - 0.5),
            },
          ],
        })),
      }).save(big);
      const bigTo = collection.replace('collection=copied', 'collection=interrupted');
      const before = process.listeners('SIGINT').length;
      const copying = cli('gallery', 'copy', big, bigTo);
      await vi.waitFor(() => expect(process.listeners('SIGINT').length).toBe(before + 1), {
        timeout: 30_000,
      });
      // Its own handler only, as a terminal's Ctrl-C would reach it (vitest's are not called).
      (process.listeners('SIGINT').at(-1) as () => void)();
      const stopped = await copying;
      expect(stopped.code).toBe(130);
      expect(stopped.stderr).toContain('gallery copy: stopping; nothing is kept');
      expect(stopped.stderr).toContain('gallery copy: stopped (interrupted); nothing was copied');
      expect(process.listeners('SIGINT').length).toBe(before);
      expect((await cli('gallery', 'list', bigTo)).stderr).toMatch(/no gallery at postgres:/);
      // A gallery file written before the name rules: every name a database refuses is named before anything
      // is made.
      const legacy = JSON.parse(readFileSync(file, 'utf8')) as { identities: { name: string }[] };
      legacy.identities[0]!.name = ' amy ';
      const legacyFile = path.join(work, 'legacy.gallery.json');
      writeFileSync(legacyFile, JSON.stringify(legacy));
      const legacyTo = collection.replace('collection=copied', 'collection=legacy');
      const refused = await cli('gallery', 'copy', legacyFile, legacyTo);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /gallery copy: 1 identity name of .*legacy\.gallery\.json cannot be stored: " amy " has spaces at the start or end/,
      );
      expect((await cli('gallery', 'list', legacyTo)).stderr).toMatch(/no gallery at postgres:/);
    });

    it('gallery add keeps the end of a photo path longer than a source may be (1,024 characters)', async () => {
      let folder = path.join(work, 'long');
      while (folder.length < 1100) folder = path.join(folder, 'a'.repeat(200));
      await mkdir(folder, { recursive: true });
      const photo = path.join(folder, 'amy1.png');
      await symlink(bbt('amy', 1), photo);
      const file = path.join(work, 'long-source.gallery.json');
      const run = await cli('gallery', 'add', file, 'amy', photo, '--embedder', 'faceapi-resnet', '--json');
      expect(run.code, run.stderr).toBe(0);
      const [added] = (JSON.parse(run.stdout) as { added: { source: string }[] }).added;
      expect(added!.source).toHaveLength(1024);
      expect(added!.source).toMatch(/^….*\/amy1\.png$/);
    });

    it("gallery add says that it waits for another writer's lock on the gallery file, then adds", async () => {
      const file = path.join(work, 'locked.gallery.json');
      await addBbtPeople(file, ['amy']);
      const release = await lockfile.lock(file, { realpath: false, lockfilePath: `${file}.lock` });
      const child = cliChild('gallery', 'add', file, 'raj', bbt('raj', 1));
      let stderr = '';
      const waiting = `warning: ${file}: gallery file locked by another writer; waiting for it`;
      const said = new Promise<void>((resolve) =>
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
          if (stderr.includes(waiting)) resolve();
        }),
      );
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      // Released once the wait is said (not before: the lock is held until then, so the warning must come).
      await Promise.race([said, exited]);
      await release();
      expect([await exited, stderr]).toEqual([0, expect.stringContaining(waiting)]);
      expect(stderr.match(/locked by another writer/g)).toHaveLength(1);
      expect((await cli('gallery', 'list', file)).stdout).toContain('raj');
    });

    it('gallery add warns of a photo the store already recognises as another identity, and adds it', async () => {
      const file = path.join(work, 'look-alikes.gallery.json');
      const first = await cli('gallery', 'add', file, 'amy', bbt('amy', 1), '--embedder', 'faceapi-resnet');
      expect(first.code, first.stderr).toBe(0);
      expect(
        JSON.parse((await cli('gallery', 'add', file, 'raj', bbt('raj', 1), '--json')).stdout).lookAlikes,
      ).toEqual([]);
      // Amy's second photo under another name; never calibrated, so at faceapi-resnet's recommended 0.448.
      // (The same photo twice is stored once, and reported once.)
      const misnamed = await cli(
        'gallery',
        'add',
        file,
        'bernadette',
        bbt('amy', 2),
        bbt('amy', 2),
        bbt('penny', 1),
        '--json',
      );
      expect(misnamed.code, misnamed.stderr).toBe(0);
      const report = JSON.parse(misnamed.stdout) as {
        added: unknown[];
        lookAlikes: { source: string; identity: string; distance: number }[];
      };
      expect(report.added).toHaveLength(2);
      expect(report.lookAlikes.map((l) => [l.source, l.identity])).toEqual([[bbt('amy', 2), 'amy']]);
      expect(report.lookAlikes[0]!.distance).toBeLessThanOrEqual(0.448);
      expect(misnamed.stderr).toContain(
        `warning: ${bbt('amy', 2)}: this face is already recognised as amy (distance ${report.lookAlikes[0]!.distance} ≤ threshold 0.448)`,
      );
    });

    it('gallery add refuses a photo whose face is stored under another name already (the same photo twice)', async () => {
      const file = path.join(work, 'same-face.gallery.json');
      expect(
        (await cli('gallery', 'add', file, 'amy', bbt('amy', 1), '--embedder', 'faceapi-resnet')).code,
      ).toBe(0);
      const before = readFileSync(file, 'utf8');
      // A copy under another file name: enrollment skips it as a duplicate; an add stored it, tied at distance 0.
      const copy = path.join(work, 'renamed-amy1.png');
      await copyFile(bbt('amy', 1), copy);
      const refused = await cli('gallery', 'add', file, 'penny', copy);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /renamed-amy1\.png: the same face as a photo stored as amy \(distance \d\.\de[-+]\d+\): one photo under two names; remove it there first if it is penny/,
      );
      expect(readFileSync(file, 'utf8')).toBe(before);
      // Under its own name it is the photo already there, as before.
      expect((await cli('gallery', 'add', file, 'amy', copy)).code).toBe(0);
    });

    it('gallery add takes folders: their photos in name order, one at a time, with progress on stderr', async () => {
      const file = path.join(work, 'folders.gallery.json');
      const photos = path.join(work, 'amy-photos');
      await mkdir(path.join(photos, 'older'), { recursive: true });
      await copyFile(bbt('amy', 2), path.join(photos, 'b.png'));
      await copyFile(bbt('amy', 1), path.join(photos, 'a.png'));
      await copyFile(bbt('amy', 3), path.join(photos, 'older', 'c.png'));
      await writeFile(path.join(photos, 'notes.txt'), 'not a photo');
      const add = await cli('gallery', 'add', file, 'amy', photos, '--embedder', 'faceapi-resnet', '--json');
      expect(add.code, add.stderr).toBe(0);
      expect((JSON.parse(add.stdout) as { added: { source: string }[] }).added.map((a) => a.source)).toEqual(
        ['a.png', 'b.png', path.join('older', 'c.png')].map((f) => path.join(photos, f)),
      );
      expect(add.stderr).toContain('photos: 3/3');
      // A folder without photos is refused by name, adding nothing.
      const empty = path.join(work, 'no-photos');
      await mkdir(empty);
      const refused = await cli('gallery', 'add', file, 'raj', empty);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`${empty} is a folder without images`);
      expect(JSON.parse((await cli('gallery', 'list', file, '--json')).stdout).identities).toBe(1);
    });

    it('gallery calibrate in place writes the threshold into the file as it is then, keeping what another process added', async () => {
      const file = path.join(work, 'calibrated-in-place.gallery.json');
      for (const name of ['amy', 'raj', 'penny']) {
        const add = await cli('gallery', 'add', file, name, bbt(name, 1), '--embedder', 'faceapi-resnet');
        expect(add.code, add.stderr).toBe(0);
      }
      const probes = path.join(work, 'probes');
      for (const name of ['amy', 'raj', 'penny', 'sheldon']) {
        await mkdir(path.join(probes, name), { recursive: true });
        for (const n of [3, 4]) await symlink(bbt(name, n), path.join(probes, name, `${name}${n}.png`));
      }
      // Another writer (serve's collections API, `gallery add`) adds a person after calibrate read the gallery
      // and before it writes the threshold: when calibrate opens the file to write, that add lands first.
      const open = FileGalleryStore.open.bind(FileGalleryStore);
      const spy = vi.spyOn(FileGalleryStore, 'open').mockImplementationOnce(async (at, options) => {
        const other = await open(at);
        await other.add('stuart', [{ embedding: new Float32Array(128).fill(1), source: 'elsewhere' }]);
        await other.close();
        return open(at, options);
      });
      try {
        const run = await cli('gallery', 'calibrate', probes, '--gallery', file, '--json');
        expect(run.code, run.stderr).toBe(0);
        expect(spy).toHaveBeenCalledTimes(1);
        const { threshold } = JSON.parse(run.stdout) as { threshold: number };
        const saved = await FileGallery.load(file);
        expect(saved.names).toEqual(['amy', 'penny', 'raj', 'stuart']);
        expect([saved.threshold, saved.isCalibrated, saved.calibration?.genuinePairs]).toEqual([
          threshold,
          true,
          6,
        ]);
      } finally {
        spy.mockRestore();
      }
      // Enrolled again meanwhile with another metric: the threshold (a euclidean distance) is not written there.
      const cosine = FileGallery.create({
        embedder: (await FileGallery.load(file)).embedder,
        metric: 'cosine',
        identities: [],
      }).toText();
      const reenrolled = vi.spyOn(FileGalleryStore, 'open').mockImplementationOnce(async (at, options) => {
        await writeFile(at, cosine);
        return open(at, options);
      });
      try {
        const run = await cli('gallery', 'calibrate', probes, '--gallery', file);
        expect(run.code).toBe(2);
        expect(run.stderr).toContain(
          `${file} changed while calibrating (now cosine, nearest; calibrated for euclidean, nearest): nothing written`,
        );
        const after = await FileGallery.load(file);
        expect([after.metric, after.isCalibrated, after.threshold]).toEqual(['cosine', false, 0]);
      } finally {
        reenrolled.mockRestore();
      }
    });
  },
);
