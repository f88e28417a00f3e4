import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { serveLocally } from '../src/index.js';
import { addBbtPeople, bbt, cli, recogniseOver } from './helpers.js';

// `--precision int8` on the commands that embed with a gallery's embedder. `facerec serve --precision int8` is
// the local counterpart of Lambda's FACEREC_PRECISION=int8: the worker threads load the int8 graph (here from
// the shipped ranges), and it still tells the enrolled people from a stranger.
describeWithSharedData(
  '--precision int8 with a gallery (serve, recognize, gallery search, gallery calibrate)',
  ['faces/face-api.js/bbt', 'faces/facenet-pytorch', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    let gallery: string;
    const calibration = sharedPath('faces', 'facenet-pytorch');

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-serve-int8-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      // Calibrated on facenet-pytorch's portraits: none of the bbt photos enrolled or sent.
      vi.stubEnv('FACEREC_CALIBRATION_DIR', calibration);
      gallery = path.join(work, 'people.gallery.json');
      await addBbtPeople(gallery, ['amy', 'raj']);
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('recognises with the int8 graph in the worker threads (no calibration folder: the shipped ranges)', async () => {
      vi.stubEnv('FACEREC_CALIBRATION_DIR', '');
      const served = await serveLocally({ gallery, port: 0, quiet: true, workers: 2, precision: 'int8' });
      try {
        const results = [];
        for (const [name, n] of [
          ['amy', 3],
          ['raj', 4],
          ['stuart', 3],
        ] as const)
          results.push(await recogniseOver(served.runtime.url, bbt(name, n), `${name}-${n}`));
        expect(results).toEqual(['amy', 'raj', 'unknown']);
      } finally {
        await served.close();
      }
      // The workers built one int8 graph beside the fp32 one, and it is the shipped ranges' graph: preparing
      // that one in this process finds it there instead of adding a second (the portraits' graph, had the
      // workers calibrated on FACEREC_CALIBRATION_DIR as set before this test).
      const int8Graphs = async () =>
        (await readdir(path.join(work, 'cache', 'onnx'))).filter(
          (f) => f.startsWith('faceapi-resnet-') && f.includes('-int8-') && f.endsWith('.onnx'),
        );
      const built = await int8Graphs();
      expect(built).toHaveLength(1);
      const prepared = await cli('models', 'prepare', '--embedder', 'faceapi-resnet', '--precision', 'int8');
      expect(prepared.code, prepared.stderr).toBe(0);
      expect(await int8Graphs()).toEqual(built);
      vi.stubEnv('FACEREC_CALIBRATION_DIR', calibration);
    }, 120_000);

    it('serve --precision int8 adds faces through the collections API at fp32, as gallery add does', async () => {
      // A copy: the face added here must not join the gallery the other tests recognise with.
      const servedGallery = path.join(work, 'int8-adds.gallery.json');
      await copyFile(gallery, servedGallery);
      const served = await serveLocally({
        gallery: servedGallery,
        port: 0,
        quiet: true,
        workers: 0,
        precision: 'int8',
        token: 'a-token-of-twenty-chars',
      });
      let id: unknown;
      try {
        const response = await fetch(`${served.runtime.url}/collections/default/faces`, {
          method: 'POST',
          headers: { authorization: 'Bearer a-token-of-twenty-chars', 'content-type': 'application/json' },
          body: JSON.stringify({
            identity: 'stuart',
            image: (await readFile(bbt('stuart', 3))).toString('base64'),
          }),
        });
        const body = (await response.json()) as { faces: { id: string }[] };
        expect(response.status).toBe(201);
        id = body.faces[0]!.id;
      } finally {
        await served.close();
      }
      // An example's id hashes its embedding: the same id as gallery add's (fp32) for the same photo and name.
      const fp32 = path.join(work, 'fp32-add.gallery.json');
      const added = await cli(
        'gallery',
        'add',
        fp32,
        'stuart',
        bbt('stuart', 3),
        '--embedder',
        'faceapi-resnet',
        '--json',
      );
      expect(added.code, added.stderr).toBe(0);
      expect((JSON.parse(added.stdout) as { added: { id: string }[] }).added[0]!.id).toBe(id);
    }, 120_000);

    it('recognize and gallery search embed with the int8 graph: the same names, distances a little apart', async () => {
      const probes = [bbt('amy', 3), bbt('raj', 4), bbt('stuart', 3)];
      type Row = { identity: string; distance: number };
      const recognize = async (...flags: string[]) => {
        const run = await cli('recognize', ...probes, '--gallery', gallery, '--json', ...flags);
        expect(run.code, run.stderr).toBe(0);
        return JSON.parse(run.stdout) as Row[];
      };
      const [fp32, int8] = [await recognize(), await recognize('--precision', 'int8')];
      expect(int8.map((r) => r.identity)).toEqual(['amy', 'raj', 'unknown']);
      expect(fp32.map((r) => r.identity)).toEqual(['amy', 'raj', 'unknown']);
      // Another graph: not the fp32 distances, but within 0.02 of them (face-api's net: cosine ≥ 0.999 to fp32).
      expect(int8.map((r) => r.distance)).not.toEqual(fp32.map((r) => r.distance));
      for (const [i, r] of int8.entries())
        expect(Math.abs(r.distance - fp32[i]!.distance)).toBeLessThan(0.02);

      const search = await cli('gallery', 'search', gallery, probes[0]!, '--json', '--precision', 'int8');
      expect(search.code, search.stderr).toBe(0);
      expect(JSON.parse(search.stdout)[0]).toMatchObject({ identity: 'amy', distance: int8[0]!.distance });
    }, 120_000);

    it('gallery calibrate --precision int8 sets the threshold from int8 embeddings of the probes', async () => {
      const calibrate = async (...flags: string[]) => {
        const out = path.join(work, `calibrated-${flags.length}.gallery.json`);
        const run = await cli(
          'gallery',
          'calibrate',
          sharedPath('faces', 'face-api.js', 'bbt'),
          '--gallery',
          gallery,
          '--out',
          out,
          '--allow-overlap',
          '--json',
          ...flags,
        );
        expect(run.code, run.stderr).toBe(0);
        return JSON.parse(run.stdout) as {
          out: string;
          threshold: number;
          genuinePairs: number;
          precision: string;
        };
      };
      const [fp32, int8] = [await calibrate(), await calibrate('--precision', 'int8')];
      expect(int8.genuinePairs).toBe(fp32.genuinePairs);
      expect([fp32.precision, int8.precision]).toEqual(['fp32', 'int8']);
      expect(int8.threshold).not.toBe(fp32.threshold);
      expect(Math.abs(int8.threshold - fp32.threshold)).toBeLessThan(0.02);

      // Each gallery records the precision its threshold was calibrated at; matching at the other one warns
      // (one stderr line naming the command that calibrates it at this one), at the same one it does not.
      expect(JSON.parse(await readFile(int8.out, 'utf8')).calibration.precision).toBe('int8');
      expect(JSON.parse(await readFile(fp32.out, 'utf8')).calibration.precision).toBe('fp32');
      // gallery list says how the threshold was chosen: the record in --json, and its summary line.
      const listed = await cli('gallery', 'list', int8.out, '--json');
      expect(listed.code, listed.stderr).toBe(0);
      const { calibration } = JSON.parse(listed.stdout) as { calibration: Record<string, unknown> };
      expect(calibration).toMatchObject({ method: 'probes', targetFar: 0.01, precision: 'int8' });
      expect(listed.stderr).toMatch(/, threshold [\d.]+, calibrated at int8 on \d{4}-\d\d-\d\d\)/);
      // To 6 decimals (a calibrated threshold is a midpoint between two distances: at 4, 0.4099739 read 0.41).
      expect(listed.stderr).toContain(
        `, threshold ${Math.round(int8.threshold * 1e6) / 1e6}, calibrated at int8`,
      );
      const warning = (calibrated: string, served: string) =>
        `warning: ${calibrated}: the gallery's threshold was calibrated on ${calibrated === int8.out ? 'int8' : 'fp32'} ` +
        `embeddings and the faces are embedded at ${served}: its false-accept rate may differ from the 0.01 it was ` +
        `calibrated for; calibrate it at ${served} (\`facerec gallery calibrate --precision ${served}\`)`;
      const probe = bbt('amy', 3);
      const atFp32 = await cli('recognize', probe, '--gallery', int8.out);
      expect(atFp32.code, atFp32.stderr).toBe(0);
      expect(atFp32.stderr).toContain(warning(int8.out, 'fp32'));
      const atInt8 = await cli('recognize', probe, '--gallery', int8.out, '--precision', 'int8');
      expect(atInt8.code, atInt8.stderr).toBe(0);
      expect(atInt8.stderr).not.toContain('warning');
      const searched = await cli('gallery', 'search', fp32.out, probe, '--precision', 'int8');
      expect(searched.code, searched.stderr).toBe(0);
      expect(searched.stderr).toContain(warning(fp32.out, 'int8'));
      // serve logs it as a warning at the recognition function's init, also with --quiet (warnings only).
      const stderr: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
        stderr.push(String(chunk));
        return true;
      });
      try {
        const served = await serveLocally({ gallery: int8.out, port: 0, quiet: true, workers: 0 });
        await served.close();
      } finally {
        spy.mockRestore();
      }
      const logged = stderr
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: string; message: string; reason?: string });
      expect(logged).toContainEqual(
        expect.objectContaining({
          level: 'WARN',
          message: 'gallery threshold calibrated at another embedder precision',
          reason: warning(int8.out, 'fp32')
            .replace(/^warning: [^:]+: /, '')
            .replace(/ \(`facerec.*$/, ''),
        }),
      );
      // An explicit threshold is the caller's: nothing to warn of.
      const explicit = await cli(
        'gallery',
        'search',
        fp32.out,
        probe,
        '--precision',
        'int8',
        '--threshold',
        '0.5',
      );
      expect(explicit.code, explicit.stderr).toBe(0);
      expect(explicit.stderr).not.toContain('warning');
    }, 180_000);

    it('refuses int8 with a calibration folder that cannot be read, and on the tfjs provider, naming why (exit 2)', async () => {
      const serve = (...flags: string[]) =>
        cli('serve', '--gallery', gallery, '--port', '0', '--queue', 'memory', ...flags);
      const missing = path.join(work, 'no-such-folder');
      vi.stubEnv('FACEREC_CALIBRATION_DIR', missing);
      const uncalibrated = await serve('--precision', 'int8');
      expect(uncalibrated.code).toBe(2);
      expect(uncalibrated.stderr).toContain(
        `calibration folder ${missing} (from $FACEREC_CALIBRATION_DIR) cannot be read (unset FACEREC_CALIBRATION_DIR to use the int8 ranges that ship for these weights)`,
      );
      vi.stubEnv('FACEREC_CALIBRATION_DIR', calibration);
      const tfjs = await serve('--workers', '0', '--provider', 'tfjs', '--precision', 'int8');
      expect(tfjs.code).toBe(2);
      // Refused before the queue, the workers and the models.
      expect(tfjs.stderr).toContain(
        'serve: --precision int8 runs on the onnx provider only (--provider onnx), not tfjs',
      );
      const invalid = await serve('--precision', 'int4');
      expect(invalid.code).not.toBe(0);
      expect(invalid.stderr).toContain("'int4' is invalid");
      // An embedder with no shipped int8 ranges, no calibration folder and none recorded in the cache: refused
      // before its weights are pulled.
      vi.stubEnv('FACEREC_CALIBRATION_DIR', '');
      const irv1 = await cli('models', 'prepare', '--embedder', 'inception-resnet-v1', '--precision', 'int8');
      expect(irv1.code).toBe(2);
      expect(irv1.stderr).toBe(
        'facerec: onnx inception-resnet-v1: precision "int8" calibrates on face images: set ' +
          'FACEREC_CALIBRATION_DIR to a folder of face crops (a few dozen, of the kind the embedder will see); ' +
          'none is recorded in the model cache yet (the folder of the first int8 load is recorded, and later ' +
          'loads use it)\n',
      );
    }, 120_000);
  },
);
