import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, FileGalleryStore, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { serveLocally } from '../src/index.js';
import { addBbtPeople, bbt, cli, recogniseOver } from './helpers.js';

const TOKEN = 'collections-test-token';

// On the main thread, and with the models in two worker threads (`--workers 2`): the same answers.
for (const workers of [0, 2])
  describeWithSharedData(
    `facerec serve with a store that changes (workers: ${workers})`,
    ['faces/face-api.js/bbt', 'faces/facenet-pytorch/multiface.jpg', 'models/upstream/pnet.pt'],
    () => {
      let work: string;
      let gallery: string;
      let served: Awaited<ReturnType<typeof serveLocally>>;
      let sent = 0;
      const auth = { authorization: `Bearer ${TOKEN}` };
      const call = async (
        method: string,
        route: string,
        body?: unknown,
        headers: Record<string, string> = auth,
      ) => {
        const response = await fetch(`${served.runtime.url}${route}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      /** Sends one frame through the pipeline and resolves to who it was recognised as. */
      const recognise = (file: string) => recogniseOver(served.runtime.url, file, `frame-${++sent}`, auth);

      beforeAll(async () => {
        work = await mkdtemp(path.join(tmpdir(), 'facerec-serve-store-'));
        vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
        vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
        gallery = path.join(work, 'people.gallery.json');
        await addBbtPeople(gallery, ['amy', 'raj']);
        served = await serveLocally({
          gallery,
          port: 0,
          quiet: true,
          token: TOKEN,
          reloadSeconds: 0.2,
          workers,
        });
      });
      afterAll(async () => {
        await served?.close();
        vi.unstubAllEnvs();
        if (work) await rm(work, { recursive: true, force: true });
      });

      it('answers a person added with `facerec gallery add` by name within one reload interval, without a restart', async () => {
        expect(await recognise(bbt('amy', 3))).toBe('amy');
        expect(await recognise(bbt('stuart', 3))).toBe('unknown');
        const add = await cli('gallery', 'add', gallery, 'stuart', bbt('stuart', 1), bbt('stuart', 2));
        expect(add.code, add.stderr).toBe(0);
        await new Promise((r) => setTimeout(r, 300));
        expect(await recognise(bbt('stuart', 3))).toBe('stuart');
      });

      it('adds, lists and removes faces over the collections API (bearer token), recognised at once', async () => {
        expect(await recognise(bbt('penny', 3))).toBe('unknown');
        const image = (await readFile(bbt('penny', 1))).toString('base64');
        const added = await call('POST', '/collections/default/faces', {
          identity: 'penny',
          image,
          source: 'penny1.png',
        });
        expect(added.status).toBe(201);
        const [face] = added.body.faces as { id: string; source: string }[];
        expect(face!.source).toBe('penny1.png');
        expect(added.body.alreadyThere).toBe(0);
        expect(await recognise(bbt('penny', 3))).toBe('penny');
        // The same photo again: stored once, answered 200 with the example as it was stored.
        const again = await call('POST', '/collections/default/faces', { identity: 'penny', image });
        expect(again).toEqual({
          status: 200,
          body: { collection: 'default', identity: 'penny', faces: [face], alreadyThere: 1, lookAlikes: [] },
        });
        // Another photo of Amy under another name: added all the same, answered with who the face is recognised as.
        const misnamed = await call('POST', '/collections/default/faces', {
          identity: 'bernadette',
          image: (await readFile(bbt('amy', 4))).toString('base64'),
        });
        expect(misnamed.status).toBe(201);
        const [lookAlike] = misnamed.body.lookAlikes as { identity: string; distance: number }[];
        expect(lookAlike!.identity).toBe('amy');
        expect(lookAlike!.distance).toBeLessThanOrEqual(0.4); // the gallery's threshold (addBbtPeople)
        const [misnamedFace] = misnamed.body.faces as { id: string }[];
        expect((await call('DELETE', `/collections/default/faces/${misnamedFace!.id}`)).status).toBe(200);
        // One of Amy's enrolled photos under another name: the same face twice, refused (422), nothing added.
        const twice = await call('POST', '/collections/default/faces', {
          identity: 'bernadette',
          image: (await readFile(bbt('amy', 2))).toString('base64'),
        });
        expect(twice.status).toBe(422);
        expect(String(twice.body.error)).toContain('the same face as a photo stored as amy');

        const listed = await call('GET', '/collections/default/faces?identity=penny');
        expect(listed).toEqual({
          status: 200,
          body: {
            collection: 'default',
            faces: [{ id: face!.id, identity: 'penny', source: 'penny1.png' }],
            total: 1,
            next_offset: null,
          },
        });
        expect((await call('DELETE', `/collections/default/faces/${face!.id}`)).status).toBe(200);
        expect(await recognise(bbt('penny', 3))).toBe('unknown');
        expect((await call('DELETE', `/collections/default/faces/${face!.id}`)).status).toBe(404);
      });

      it.runIf(workers === 0)(
        'refuses a --workers value that is not "auto" or 0–64, and bad --drain-seconds and admission values (exit 2)',
        async () => {
          for (const value of ['abc', '99', '-1']) {
            const run = await cli(
              'serve',
              '--gallery',
              gallery,
              '--port',
              '0',
              '--queue',
              'memory',
              '--workers',
              value,
            );
            expect(run.code).toBe(2);
            expect(run.stderr).toContain('--workers must be "auto" or an integer from 0 to 64');
          }
          for (const value of ['abc', '-1', '99999']) {
            const run = await cli('serve', '--gallery', gallery, '--port', '0', '--drain-seconds', value);
            expect(run.code).toBe(2);
            expect(run.stderr).toContain('--drain-seconds must be a number from 0 to 3600');
          }
          for (const [flag, value] of [
            ['--max-in-flight-pixels', 'abc'],
            ['--max-in-flight-pixels', '0x10'],
            ['--max-in-flight', '0'],
            ['--max-queue', ''],
          ] as const) {
            const run = await cli('serve', '--gallery', gallery, '--port', '0', flag, value);
            expect(run.code).toBe(2);
            expect(run.stderr).toContain(`serve: ${flag} must be a positive integer, got "${value}"`);
          }
        },
      );

      it('refuses without the token, and answers bad requests with 4xx', async () => {
        expect((await call('GET', '/collections/default/faces', undefined, {})).status).toBe(401);
        expect((await call('GET', '/collections/other/faces')).status).toBe(404);
        expect((await call('POST', '/collections/default/faces', { identity: 'x' })).status).toBe(400);
        const white = (await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'))).toString(
          'base64',
        );
        // The names of answers: refused as every bad name is (400), before the photo is looked at.
        for (const reserved of ['unknown', 'no face']) {
          const refused = await call('POST', '/collections/default/faces', {
            identity: reserved,
            image: white,
          });
          expect(refused.status).toBe(400);
          expect(String(refused.body.error)).toContain(`"${reserved}" is reserved for`);
        }
        const noFace = await call('POST', '/collections/default/faces', {
          identity: 'nobody',
          image: white,
          source: '<b>upload 7</b>',
        });
        // The caller's source is not repeated back; one the stores would refuse is a 400 before any work.
        expect([noFace.status, noFace.body.error]).toEqual([422, 'no face found in the photo']);
        const badSource = await call('POST', '/collections/default/faces', {
          identity: 'nobody',
          image: white,
          source: 'a\nb',
        });
        expect([badSource.status, String(badSource.body.error)]).toEqual([
          400,
          expect.stringContaining('the source holds a control character'),
        ]);
        expect((await call('PUT', '/collections/default/faces')).status).toBe(405);
        // The listing's query: one non-empty ?identity= and nothing else (a misspelt one listed every face).
        for (const [query, error] of [
          ['?identty=amy', 'unknown query parameter; this route takes ?identity=, ?limit=, ?offset= only'],
          ['?limit=0', '?limit= takes a whole number from 1 to 10000'],
          ['?offset=-1', '?offset= takes a whole number ≥ 0'],
          ['?identity=amy&identity=raj', 'one ?identity= at a time'],
          ['?identity=', '?identity= needs a name'],
        ]) {
          expect(await call('GET', `/collections/default/faces${query}`)).toEqual({
            status: 400,
            body: { error },
          });
        }
        // A group photo: refused (who is meant?), unless the largest face is asked for.
        const group = (await readFile(sharedPath('faces', 'facenet-pytorch', 'multiface.jpg'))).toString(
          'base64',
        );
        const several = await call('POST', '/collections/default/faces', { identity: 'group', image: group });
        expect([several.status, String(several.body.error)]).toEqual([
          422,
          expect.stringContaining('the collections API\'s "largest": true'),
        ]);
        const largest = await call('POST', '/collections/default/faces', {
          identity: 'group',
          image: group,
          largest: true,
        });
        expect(largest.status).toBe(201);
        const [groupFace] = largest.body.faces as { id: string }[];
        expect((await call('DELETE', `/collections/default/faces/${groupFace!.id}`)).status).toBe(200);
        // An image beyond the pixel limit: 413, as on the frame endpoint (only its header is read).
        const png = Buffer.from(await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png')));
        png.writeUInt32BE(20000, 16);
        png.writeUInt32BE(20000, 20);
        const huge = await call('POST', '/collections/default/faces', {
          identity: 'big',
          image: png.toString('base64'),
        });
        expect([huge.status, String(huge.body.error)]).toEqual([413, expect.stringMatching(/too large/i)]);
        // What the caller put in the path is not repeated back.
        const name = `<img src=x>${'n'.repeat(3000)}`;
        const noCollection = await call('GET', `/collections/${encodeURIComponent(name)}/faces`);
        expect(noCollection).toEqual({
          status: 404,
          body: { error: 'no such collection; this server has default' },
        });
        const noFaceId = await call('DELETE', `/collections/default/faces/${encodeURIComponent(name)}`);
        expect(noFaceId).toEqual({
          status: 404,
          body: { error: 'no face with that id in collection default' },
        });
        const unknown = await call('POST', '/collections/default/faces', {
          identity: 'x',
          image: white,
          [name]: 1,
        });
        expect(unknown.status).toBe(400);
        expect(JSON.stringify(unknown.body)).not.toContain('img');
        // A malformed percent-escape in the path is the caller's mistake: 400, not a 500.
        expect(await call('GET', '/collections/%E0%A4%A/faces')).toEqual({
          status: 400,
          body: { error: 'malformed percent-encoding in the path' },
        });
        expect((await call('DELETE', '/collections/default/faces/%E0%A4%A')).status).toBe(400);
        // A name with spaces at either end is a bad field (400), named without repeating it.
        const spaced = await call('POST', '/collections/default/faces', { identity: ' amy ', image: white });
        expect(spaced.status).toBe(400);
        expect(String(spaced.body.error)).toContain('the identity name has spaces at the start or end');
      });

      it('stores a decomposed (NFD) name in NFC, as `facerec gallery add` does, and finds it by either spelling', async () => {
        // A photo of nobody in the gallery (one already there under another name would be refused).
        const image = (await readFile(bbt('howard', 1))).toString('base64');
        const added = await call('POST', '/collections/default/faces', { identity: 'Jose\u0301', image });
        expect([added.status, added.body.identity]).toEqual([201, 'Jos\u00e9']);
        for (const spelling of ['Jose%CC%81', 'Jos%C3%A9']) {
          const listed = await call('GET', `/collections/default/faces?identity=${spelling}`);
          expect((listed.body.faces as { identity: string }[]).map((f) => f.identity)).toEqual(['Jos\u00e9']);
        }
        const [face] = added.body.faces as { id: string }[];
        expect((await call('DELETE', `/collections/default/faces/${face!.id}`)).status).toBe(200);
      });

      it('keeps the loaded gallery when the file is replaced by one it cannot read, and says so', async () => {
        const good = await readFile(gallery, 'utf8');
        const replace = async (text: string) => {
          await writeFile(`${gallery}.tmp`, text);
          await rename(`${gallery}.tmp`, gallery);
        };
        const stderr: string[] = [];
        const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
          stderr.push(String(chunk));
          return true;
        });
        try {
          await replace(good.slice(0, 200));
          await new Promise((r) => setTimeout(r, 300));
          expect(await recognise(bbt('amy', 3))).toBe('amy');
          // An add cannot go into a file the server cannot read: the server's problem (503), not the request's.
          const add = await call('POST', '/collections/default/faces', {
            identity: 'penny',
            image: (await readFile(bbt('penny', 1))).toString('base64'),
          });
          const unusable =
            "the collection's store cannot take changes: it cannot be read or written as it is (see the server's log)";
          expect([add.status, add.body.error]).toEqual([503, unusable]);
          // Nor a removal (it was a 500 "internal error"); the file's path and parser detail stay in the log.
          const { faces } = (await call('GET', '/collections/default/faces')).body as {
            faces: { id: string }[];
          };
          const removal = await call('DELETE', `/collections/default/faces/${faces[0]!.id}`);
          expect([removal.status, removal.body.error]).toEqual([503, unusable]);
          // Removed from under the server (which matches from the copy it holds): an add was answered 422, as
          // if the photo were at fault.
          await rm(gallery);
          await new Promise((r) => setTimeout(r, 300));
          const gone = await call('POST', '/collections/default/faces', {
            identity: 'penny',
            image: (await readFile(bbt('penny', 1))).toString('base64'),
          });
          expect([gone.status, gone.body.error]).toEqual([503, unusable]);
          expect(await recognise(bbt('amy', 3))).toBe('amy');
        } finally {
          spy.mockRestore();
          await replace(good);
        }
        // Logged as a warning (also with --quiet, which drops only the per-request lines).
        const warnings = stderr
          .join('')
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(warnings).toContainEqual(
          expect.objectContaining({
            level: 'WARN',
            message: 'gallery update refused; keeping the loaded version',
            location: gallery,
            // What is wrong, as a fixed word (the file cut short: not JSON), never the parser's message.
            reason: 'INVALID_GALLERY',
            problem: 'not-json',
          }),
        );
        await new Promise((r) => setTimeout(r, 300));
        expect(await recognise(bbt('amy', 3))).toBe('amy');
      });

      it('matches at a threshold changed while serving (another process recalibrating), within one reload interval', async () => {
        expect(await recognise(bbt('amy', 3))).toBe('amy');
        const other = await FileGalleryStore.open(gallery);
        const original = other.threshold;
        try {
          await other.setThreshold(0.05); // amy3 is ≈ 0.3 from amy's examples
          await new Promise((r) => setTimeout(r, 300));
          expect(await recognise(bbt('amy', 3))).toBe('unknown');
          // Reset to never calibrated: matched at the registry's threshold from the first frame that sees it
          // (the store picks the change up during that frame's match, which is then done again).
          await other.setThreshold(0);
          await new Promise((r) => setTimeout(r, 300));
          expect(await recognise(bbt('amy', 3))).toBe('amy');
        } finally {
          await other.setThreshold(original);
          await other.close();
        }
        await new Promise((r) => setTimeout(r, 300));
        expect(await recognise(bbt('amy', 3))).toBe('amy');
      });
    },
  );
