import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  decodeImage,
  InvalidOptionsError,
  loadManifest,
  ModelStore,
  type RgbImage,
} from '@facerec/framework';
import { resizeRgb } from '@facerec/framework/internal';
import {
  describeWithSharedData,
  embeddingAgreement,
  linkFaceApiCalibrationCrops,
  readSyntheticReference,
  sharedDir,
  sharedPath,
} from '@facerec/framework/testing';
import {
  createOnnxProvider,
  OnnxFaceApiEmbedder,
  OnnxInceptionResnetV1Embedder,
} from '@facerec/provider-onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from './fixtures/synthetic-checkpoint.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';
/** Calibration and evaluation never share a photo: bbt face shots calibrate, the MTCNN reference crops test. */
const IRV1_CALIBRATION = 'faces/face-api.js/bbt';
const offline = (() => Promise.reject(new Error('tests run offline'))) as typeof fetch;
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describeWithSharedData('int8 embedders (onnx)', [REFERENCE, 'reference/crops', IRV1_CALIBRATION], () => {
  let work: string;
  let store: ModelStore;
  let crops: RgbImage[];

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-int8-'));
    store = new ModelStore({
      manifest: await loadManifest(),
      cacheDir: path.join(work, 'cache'),
      fetch: offline,
    });
    const reference = await readSyntheticReference(sharedPath(REFERENCE));
    crops = await Promise.all(
      reference.embeddings.map(async (e) => decodeImage(await readFile(sharedPath('reference', e.cropPng)))),
    );
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('InceptionResnetV1 (synthetic weights)', () => {
    let weights: string;
    beforeAll(async () => {
      const reference = await readSyntheticReference(sharedPath(REFERENCE));
      weights = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
    });
    const load = (precision: 'fp32' | 'int8', calibrationDir?: string) =>
      OnnxInceptionResnetV1Embedder.load(store, weights, { intraOpNumThreads: 2, precision, calibrationDir });

    it('agrees with fp32 on every reference crop (cosine ≥ 0.999, centred correlation ≥ 0.99)', async () => {
      const fp32 = await load('fp32');
      const int8 = await load('int8', sharedPath(IRV1_CALIBRATION));
      try {
        expect(int8.graph.precision).toBe('int8');
        expect([int8.precision, fp32.precision]).toEqual(['int8', 'fp32']);
        expect(int8.graph.path).toMatch(/-int8-[0-9a-f]{16}-q\d+\.onnx$/);
        expect(int8.modelId).toBe(fp32.modelId); // same embedding space: galleries stay compatible
        const agreement = embeddingAgreement(await int8.embed(crops), await fp32.embed(crops));
        console.log(
          `IRV1 int8 vs fp32 on ${crops.length} reference crops: cosine min ${agreement.minCosine.toFixed(6)}, ` +
            `mean ${mean(agreement.cosines).toFixed(6)}; centred correlation ${agreement.correlation.toFixed(4)}, ` +
            `min centred cosine ${agreement.minCentredCosine.toFixed(4)}`,
        );
        expect(agreement.minCosine).toBeGreaterThanOrEqual(0.999);
        // Random weights map every face to nearly one direction; the centred figures tell int8 noise from signal.
        expect(agreement.correlation).toBeGreaterThanOrEqual(0.99);
        expect(agreement.minCosine).toBeLessThan(1); // the int8 graph really ran
      } finally {
        await fp32.dispose();
        await int8.dispose();
      }
      // The second load reads the cached int8 graph.
      const again = await load('int8', sharedPath(IRV1_CALIBRATION));
      expect(again.graph.built).toBe(false);
      await again.dispose();
    }, 180_000);

    it('needs calibration faces for int8 where the cache has no calibration recorded', async () => {
      const saved = process.env.FACEREC_CALIBRATION_DIR;
      delete process.env.FACEREC_CALIBRATION_DIR;
      // A cache of its own: the other tests record a calibration in theirs.
      const bare = new ModelStore({
        manifest: await loadManifest(),
        cacheDir: path.join(work, 'bare-cache'),
        fetch: offline,
      });
      const loadBare = (calibrationDir?: string) =>
        OnnxInceptionResnetV1Embedder.load(bare, weights, {
          intraOpNumThreads: 2,
          precision: 'int8',
          calibrationDir,
        });
      try {
        await expect(loadBare()).rejects.toThrow(InvalidOptionsError);
        await expect(loadBare()).rejects.toThrow(
          /set FACEREC_CALIBRATION_DIR to .*; none is recorded in the model cache yet \(the folder of the first int8 load is recorded, and later loads use it\)$/,
        );
        const empty = path.join(work, 'empty');
        await mkdir(empty, { recursive: true });
        await expect(loadBare(empty)).rejects.toThrow(/holds no png\/jpeg\/webp image/);
        // Refused before the float graph was converted (the weights pulled, for named ones).
        expect(await readdir(path.join(work, 'bare-cache')).catch(() => [])).not.toContain('onnx');
        // A file that is no image is named (the message was "Not an image: …" alone).
        const junk = path.join(work, 'junk');
        await mkdir(junk, { recursive: true });
        await writeFile(path.join(junk, 'a.png'), 'not an image');
        await expect(loadBare(junk)).rejects.toThrow(
          `calibration folder ${junk}: ${path.join(junk, 'a.png')}: Not an image`,
        );
      } finally {
        if (saved !== undefined) process.env.FACEREC_CALIBRATION_DIR = saved;
      }
    });

    it('uses the calibration recorded in the cache when no folder is named', async () => {
      const saved = process.env.FACEREC_CALIBRATION_DIR;
      delete process.env.FACEREC_CALIBRATION_DIR;
      const calibrated = await load('int8', sharedPath(IRV1_CALIBRATION));
      const sample = crops.slice(0, 4);
      try {
        const images = (await readdir(sharedPath(IRV1_CALIBRATION), { recursive: true })).filter((n) =>
          /\.(png|jpe?g|webp)$/i.test(n),
        ).length;
        expect(calibrated.graph.calibration).toEqual({ folder: sharedPath(IRV1_CALIBRATION), images });
        const recordFile = calibrated.graph.path.replace(
          /-int8-[0-9a-f]{16}-q\d+\.onnx$/,
          '-int8-calibration.json',
        );
        const record = JSON.parse(await readFile(recordFile, 'utf8'));
        expect(record).toMatchObject({ folder: sharedPath(IRV1_CALIBRATION), images, formatVersion: 1 });
        const expected = await calibrated.embed(sample);

        // Without a folder: the same int8 graph, from the cache.
        const recorded = await load('int8');
        try {
          expect(recorded.graph.path).toBe(calibrated.graph.path);
          expect(recorded.graph.built).toBe(false);
          expect(recorded.graph.calibration).toMatchObject({ images, recorded: record.recordedAt });
          expect(await recorded.embed(sample)).toEqual(expected);
        } finally {
          await recorded.dispose();
        }
        // The int8 graph removed: built again from the recorded ranges, byte for byte the same graph.
        const before = await readFile(calibrated.graph.path);
        await rm(calibrated.graph.path);
        const rebuilt = await load('int8');
        try {
          expect(rebuilt.graph.built).toBe(true);
          expect((await readFile(rebuilt.graph.path)).equals(before)).toBe(true);
        } finally {
          await rebuilt.dispose();
        }

        // A record for other weights does not apply; a damaged one is named.
        await writeFile(recordFile, JSON.stringify({ ...record, weightsSha256: 'ab'.repeat(32) }));
        await expect(load('int8')).rejects.toThrow(
          /no calibration is recorded in the model cache for these weights/,
        );
        await writeFile(recordFile, '{"formatVersion": 1, "ranges": ');
        await expect(load('int8')).rejects.toThrow(
          `the calibration recorded in the model cache (${recordFile}) cannot be used (not JSON)`,
        );
        // A load with the folder records it again.
        await (await load('int8', sharedPath(IRV1_CALIBRATION))).dispose();
        expect(JSON.parse(await readFile(recordFile, 'utf8'))).toMatchObject({
          calibrationSha256: record.calibrationSha256,
        });
      } finally {
        await calibrated.dispose();
        if (saved !== undefined) process.env.FACEREC_CALIBRATION_DIR = saved;
      }
    }, 180_000);

    it('is chosen by the registry option `precision`', async () => {
      const provider = createOnnxProvider({ intraOpNumThreads: 2, modelStore: store });
      await expect(
        provider.embedder('inception-resnet-v1', { weights, precision: 'int4' as 'int8' }),
      ).rejects.toThrow(/precision/);
      const saved = process.env.FACEREC_CALIBRATION_DIR;
      process.env.FACEREC_CALIBRATION_DIR = sharedPath(IRV1_CALIBRATION);
      try {
        const embedder = await provider.embedder('inception-resnet-v1', { weights, precision: 'int8' });
        expect((embedder as OnnxInceptionResnetV1Embedder).graph.precision).toBe('int8');
        await embedder.dispose();
      } finally {
        if (saved === undefined) delete process.env.FACEREC_CALIBRATION_DIR;
        else process.env.FACEREC_CALIBRATION_DIR = saved;
      }
    }, 120_000);
  });

  describe('face-api.js recognition net (real weights)', () => {
    it('agrees with fp32 on the labelled face shots (cosine ≥ 0.999)', async () => {
      // Calibrated on the group-photo crops, tested on the bbt face shots: no photo in both.
      const calibration = await linkFaceApiCalibrationCrops(
        sharedDir(),
        path.join(work, 'faceapi-calibration'),
      );
      expect(await readdir(calibration)).toHaveLength(20);
      const shots: RgbImage[] = [];
      const bbt = sharedPath(IRV1_CALIBRATION);
      for (const who of (await readdir(bbt)).sort())
        for (const f of (await readdir(path.join(bbt, who))).sort())
          shots.push(await resizeRgb(await decodeImage(await readFile(path.join(bbt, who, f))), 150, 150));

      const fp32 = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 2 });
      const int8 = await OnnxFaceApiEmbedder.load(store, {
        intraOpNumThreads: 2,
        precision: 'int8',
        calibrationDir: calibration,
      });
      try {
        const agreement = embeddingAgreement(await int8.embed(shots), await fp32.embed(shots));
        console.log(
          `face-api int8 vs fp32 on ${shots.length} bbt face shots: cosine min ${agreement.minCosine.toFixed(6)}, ` +
            `mean ${mean(agreement.cosines).toFixed(6)}`,
        );
        expect(agreement.minCosine).toBeGreaterThanOrEqual(0.999);
        expect(agreement.minCosine).toBeLessThan(1);
      } finally {
        await fp32.dispose();
        await int8.dispose();
      }
    }, 180_000);
  });
});
