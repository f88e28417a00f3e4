import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolvePipelineProps } from '@facerec/cdk';
import {
  BaseEmbedder,
  CACHE_DIR_ENV,
  defineEmbedder,
  type EmbedderPreprocessing,
  MODELS,
  MODELS_MIRROR_ENV,
  type RgbImage,
} from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { loadConfig, loadFrames, localResponses, runWorkload } from '@facerec/lambda-runtime';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { writeGalleryFor } from '../../cdk/test/galleries.js';
import { serveLocally } from '../src/index.js';
import { cliWith } from './helpers.js';

// ---- The whole registration of a new embedder: one description (with its provider-free implementation). ----

const SIZE = 32;
const PREPROCESSING: EmbedderPreprocessing = {
  inputSize: { width: SIZE, height: SIZE },
  crop: { size: { width: SIZE, height: SIZE }, shape: 'square', margin: 4 },
  layout: 'NHWC',
  channelOrder: 'RGB',
  mean: [0, 0, 0],
  std: [1, 1, 1],
};

/** A test double: the mean colour of each quadrant of the crop (12-d), centred and normalised. */
class QuadrantColourEmbedder extends BaseEmbedder {
  readonly crops: RgbImage[] = [];
  constructor() {
    super({
      provider: 'any',
      modelId: 'quadrant-colour',
      weightsSha256: undefined,
      dimension: 12,
      preprocessing: PREPROCESSING,
    });
  }
  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    const out = new Float32Array(faces.length * 12);
    faces.forEach((face, f) => {
      for (let y = 0; y < SIZE; y++)
        for (let x = 0; x < SIZE; x++)
          for (let c = 0; c < 3; c++) {
            const q = (y < SIZE / 2 ? 0 : 2) + (x < SIZE / 2 ? 0 : 1);
            out[f * 12 + q * 3 + c]! += face.data[(y * SIZE + x) * 3 + c]! / (SIZE * SIZE);
          }
      const row = out.subarray(f * 12, f * 12 + 12);
      const mean = row.reduce((a, b) => a + b, 0) / 12;
      for (let i = 0; i < 12; i++) row[i]! -= mean;
      const n = Math.hypot(...row) || 1;
      for (let i = 0; i < 12; i++) row[i]! /= n;
    });
    return out;
  }
  protected release(): void {}
}

const FAKE = defineEmbedder({
  kind: 'embedder',
  id: 'quadrant-colour',
  summary: 'test double: mean colour per quadrant of a 32×32 square crop',
  licence: 'none',
  options: (await import('zod')).z.strictObject({}),
  dimension: 12,
  preprocessing: PREPROCESSING,
  thresholds: {},
  fromSettings: () => ({}),
  modelId: () => 'quadrant-colour',
  settingsForModelId: (id) => (id === 'quadrant-colour' ? {} : undefined),
  manifestEntries: () => [],
  load: async () => new QuadrantColourEmbedder(),
});
const registry = MODELS.with(FAKE);

// ---- Everything below uses it with no other edit anywhere. ----

const BBT = ['faces', 'face-api.js', 'bbt'] as const;
const queues = { FACEREC_REQUEST_QUEUE_URL: 'requests', FACEREC_RESPONSE_QUEUE_URL: 'responses' };

describeWithSharedData(
  'a new embedder registered in one place',
  [BBT.join('/'), 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    let people: string;
    let galleryFile: string;

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-registry-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      people = path.join(work, 'people');
      for (const name of ['amy', 'howard']) {
        await mkdir(path.join(people, name), { recursive: true });
        for (const n of [1, 2])
          await symlink(
            sharedPath(...BBT, name, `${name}${n}.png`),
            path.join(people, name, `${name}${n}.png`),
          );
      }
      galleryFile = path.join(work, 'fake.gallery.json');
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('is refused by the built-in registry everywhere, listing the valid ids', async () => {
      const run = await cliWith({}, 'enroll', people, '--out', galleryFile, '--embedder', 'quadrant-colour');
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/Allowed choices are inception-resnet-v1, faceapi-resnet/);
      expect(() => loadConfig({ ...queues, FACEREC_EMBEDDER: 'quadrant-colour' })).toThrow(/is not one of/);
      expect(() => resolvePipelineProps({ embedder: 'quadrant-colour' })).toThrow(
        /No embedder model "quadrant-colour"/,
      );
    });

    it('facerec enroll builds a gallery with it, cropping as it asks', async () => {
      const run = await cliWith(
        { registry },
        'enroll',
        people,
        '--out',
        galleryFile,
        '--embedder',
        'quadrant-colour',
        '--threshold',
        '0.5',
        '--json',
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({
        out: galleryFile,
        modelId: 'quadrant-colour',
        threshold: 0.5,
        thresholdSource: 'gallery',
        identities: ['amy', 'howard'],
        enrolled: ['amy1', 'amy2', 'howard1', 'howard2'].map((n) => ({
          identity: n.slice(0, -1),
          file: `${n.slice(0, -1)}/${n}.png`,
        })),
        skipped: [],
        unenrolled: [],
        lookAlikes: [],
      });
      const file = JSON.parse(await readFile(galleryFile, 'utf8')) as {
        embedder: { modelId: string; dimension: number; preprocessing: { crop: unknown } };
        identities: { name: string }[];
      };
      expect(file.embedder).toMatchObject({ modelId: 'quadrant-colour', dimension: 12 });
      expect(file.embedder.preprocessing.crop).toEqual(PREPROCESSING.crop);
      expect(file.identities.map((i) => i.name)).toEqual(['amy', 'howard']);
    });

    it('facerec gallery calibrate --json reports the calibration it stored; the enrolled images are refused as probes', async () => {
      const out = path.join(work, 'calibrated.json');
      const calibrate = (dir: string) =>
        cliWith({ registry }, 'gallery', 'calibrate', dir, '--gallery', galleryFile, '--out', out, '--json');
      const same = await calibrate(people);
      expect(same.code).toBe(2);
      expect(same.stderr).toMatch(
        /4 of 4 probes are enrolled examples: amy\/amy1\.png \(same file as enrolled amy\/amy1\.png\)/,
      );
      const probes = path.join(work, 'probes');
      for (const name of ['amy', 'howard']) {
        await mkdir(path.join(probes, name), { recursive: true });
        for (const n of [3, 4])
          await symlink(
            sharedPath(...BBT, name, `${name}${n}.png`),
            path.join(probes, name, `${name}${n}.png`),
          );
      }
      const run = await calibrate(probes);
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout) as { out: string; threshold: number; genuinePairs: number };
      expect(summary.out).toBe(out);
      expect(summary.genuinePairs).toBe(4);
      const stored = JSON.parse(await readFile(out, 'utf8')) as { threshold: number };
      expect(stored.threshold).toBe(summary.threshold);
    });

    it('facerec recognize warns when the gallery would call every face unknown (never calibrated)', async () => {
      const raw = path.join(work, 'uncalibrated.json');
      const enroll = await cliWith(
        { registry },
        'enroll',
        people,
        '--out',
        raw,
        '--embedder',
        'quadrant-colour',
      );
      expect(enroll.code, enroll.stderr).toBe(0);
      const image = sharedPath(...BBT, 'amy', 'amy1.png');
      const run = await cliWith({ registry }, 'recognize', image, '--gallery', raw, '--json');
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(/threshold 0 and was never calibrated, so every face will be "unknown"/);
      expect((JSON.parse(run.stdout) as { identity: string }[])[0]!.identity).toBe('unknown');
      const calibrated = await cliWith({ registry }, 'recognize', image, '--gallery', galleryFile);
      expect(calibrated.stderr).not.toMatch(/never calibrated/);
    });

    it('facerec recognize reads the embedder from the gallery', async () => {
      const image = sharedPath(...BBT, 'amy', 'amy1.png');
      const run = await cliWith({ registry }, 'recognize', image, '--gallery', galleryFile, '--json');
      expect(run.code, run.stderr).toBe(0);
      const [row] = JSON.parse(run.stdout) as { identity: string; distance: number }[];
      // amy1 is enrolled: its own embedding is in the gallery, at distance 0.
      expect(row).toMatchObject({ identity: 'amy' });
      expect(row!.distance).toBeLessThan(1e-3);
    });

    it('facerec serve runs the pipeline with it (the embedder comes from the gallery)', {
      timeout: 120_000,
    }, async () => {
      const { runtime } = await serveLocally({ gallery: galleryFile, port: 0, quiet: true, registry });
      try {
        const report = await runWorkload({
          url: runtime.url,
          frames: (await loadFrames(people)).slice(0, 4),
          responses: localResponses(runtime.url),
          requests: 4,
          concurrency: 2,
          timeoutMs: 60_000,
        });
        expect(report.answered).toBe(4);
        expect(report.accuracy).toEqual({ faces: 4, correct: 4, noFace: 0 }); // the enrolled photos themselves
        // Worker threads cannot load this registry: asked for, they are refused with what to do instead.
        const workers = await cliWith({ registry }, 'serve', '--gallery', galleryFile, '--workers', '2');
        expect(workers.code).toBe(2);
        expect(workers.stderr).toContain(
          'serve: --workers 2: worker threads run the built-in model registry only, and this facerec was given a registry of its own; leave --workers out (or give 0)',
        );
        // So are the image commands' (they named the caller's embedder as no model at all).
        const recognize = await cliWith(
          { registry },
          'recognize',
          galleryFile,
          '--gallery',
          galleryFile,
          '--workers',
          '2',
        );
        expect(recognize.code).toBe(2);
        expect(recognize.stderr).toContain(
          'recognize: --workers 2: worker threads run the built-in model registry only',
        );
        // A second server on the same port is refused as bad input, not left running.
        const port = Number(new URL(runtime.url).port);
        await expect(serveLocally({ gallery: galleryFile, port, quiet: true, registry })).rejects.toThrow(
          `serve: port ${port} is already in use`,
        );
      } finally {
        await runtime.close();
      }
    });

    it('lambda-runtime configuration and the CDK construct accept it (and its gallery)', async () => {
      const config = loadConfig({ ...queues, FACEREC_EMBEDDER: 'quadrant-colour' }, registry);
      expect(config.embedder.description).toBe(FAKE);
      // A build context holding a gallery enrolled with the custom embedder: synth reads its header.
      const imageDirectory = mkdtempSync(path.join(tmpdir(), 'facerec-registry-cdk-'));
      writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM scratch\n');
      await writeGalleryFor(
        path.join(imageDirectory, 'gallery', 'gallery.json'),
        'quadrant-colour',
        undefined,
        registry,
      );
      const named = resolvePipelineProps({ imageDirectory, embedder: 'quadrant-colour', registry });
      expect(named.embedder.description.id).toBe('quadrant-colour');
      // Without the embedder prop, the gallery's is deployed.
      expect(resolvePipelineProps({ imageDirectory, registry }).embedder.description.id).toBe(
        'quadrant-colour',
      );
    });
  },
);
