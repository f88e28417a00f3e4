import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  decodeImage,
  FACEAPI_RESNET,
  INCEPTION_RESNET_V1,
  loadManifest,
  ModelStore,
  type RgbImage,
} from '@facerec/framework';
import { resizeRgb } from '@facerec/framework/internal';
import {
  describeWithSharedData,
  embeddingAgreement,
  linkFaceApiCalibrationCrops,
  sharedDir,
  sharedPath,
} from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { OnnxInceptionResnetV1Embedder } from '../src/embedder.js';
import {
  FACEAPI_RESNET_GRAPH_LAYOUT,
  faceApiCalibrationBatch,
  loadFaceApiResnetGraph,
  OnnxFaceApiEmbedder,
} from '../src/faceapi/embedder.js';
import { FACEAPI_RESNET_INT8_RANGES } from '../src/faceapi/int8-ranges.js';
import {
  CALIBRATION_DIR_ENV,
  int8Calibration,
  measureInt8Ranges,
  readCalibrationFaces,
} from '../src/int8.js';

const offline = (() => Promise.reject(new Error('tests run offline'))) as typeof fetch;

// face-api.js's int8 graph without calibration images: the activation ranges shipped in int8-ranges.ts (from
// scripts/int8-ranges.ts) must be exactly what its calibration faces measure, so the graph built from them is
// the one whose accuracy the README reports.
describeWithSharedData(
  "face-api.js's int8 graph from the shipped ranges",
  ['reference/crops', 'faces/face-api.js/bbt'],
  () => {
    let work: string;
    let store: ModelStore;
    let crops: string;

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-int8-shipped-'));
      store = new ModelStore({
        manifest: await loadManifest(),
        cacheDir: path.join(work, 'cache'),
        fetch: offline,
      });
      crops = await linkFaceApiCalibrationCrops(sharedDir(), path.join(work, 'crops'));
      vi.stubEnv(CALIBRATION_DIR_ENV, '');
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('are the ranges its calibration faces measure, for the published weights and this graph layout', async () => {
      const float = await loadFaceApiResnetGraph(store);
      expect(FACEAPI_RESNET_INT8_RANGES.weightsSha256).toBe(float.weightsSha256);
      expect(FACEAPI_RESNET_INT8_RANGES.graphVersion).toBe(FACEAPI_RESNET_GRAPH_LAYOUT);
      // The registry says where ranges ship (the construct and lambda-tree let int8 go without calibration).
      expect(FACEAPI_RESNET.int8Calibration).toBe(FACEAPI_RESNET_INT8_RANGES.source);
      expect(INCEPTION_RESNET_V1.int8Calibration).toBeUndefined();
      const faces = await readCalibrationFaces('test', crops, 150);
      const measured = await measureInt8Ranges(
        float.bytes ?? new Uint8Array(await readFile(float.path)),
        faces,
        faceApiCalibrationBatch,
        2,
      );
      // Within 1e-5 (relative): another CPU's kernels or another libvips may round differently; on the
      // machine that wrote them they are exactly equal (printed).
      const shipped = FACEAPI_RESNET_INT8_RANGES.ranges;
      expect([...measured.keys()].sort()).toEqual(Object.keys(shipped).sort());
      let exact = true;
      for (const [name, { min, max }] of measured) {
        const [sMin, sMax] = shipped[name]!;
        expect(Math.abs(min - sMin), name).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(sMin)));
        expect(Math.abs(max - sMax), name).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(sMax)));
        exact &&= min === sMin && max === sMax;
      }
      expect(measured.size).toBe(83);
      console.log(
        `face-api.js int8 ranges measured again: ${exact ? 'exactly' : 'within 1e-5 of'} the shipped ones`,
      );
    }, 120_000);

    it('give, with no calibration folder named, the graph that calibrating on those faces gives', async () => {
      const shipped = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 2, precision: 'int8' });
      const calibrated = await OnnxFaceApiEmbedder.load(store, {
        intraOpNumThreads: 2,
        precision: 'int8',
        calibrationDir: crops,
      });
      const fp32 = await OnnxFaceApiEmbedder.load(store, { intraOpNumThreads: 2 });
      try {
        expect([shipped.precision, calibrated.precision, fp32.precision]).toEqual(['int8', 'int8', 'fp32']);
        // Two cache files (keyed by the ranges' and by the images' hash) that embed alike (where the ranges
        // measure exactly the same, as on the machine that measured them, the files are byte for byte the same: printed).
        expect(shipped.graph.path).not.toBe(calibrated.graph.path);
        const same =
          Buffer.compare(await readFile(shipped.graph.path), await readFile(calibrated.graph.path)) === 0;
        console.log(
          `int8 graph from the shipped ranges vs calibrated on the crops: ${same ? 'byte-identical' : 'different bytes'}`,
        );
        const bbt = sharedPath('faces', 'face-api.js', 'bbt');
        const shots: RgbImage[] = [];
        for (const who of (await readdir(bbt)).sort())
          shots.push(
            await resizeRgb(await decodeImage(await readFile(path.join(bbt, who, `${who}1.png`))), 150, 150),
          );
        const fromShipped = await shipped.embed(shots);
        // Byte-identical graphs embed identically; ranges a few 1e-6 apart (another CPU's float kernels) move
        // some uint8 roundings by one step: 0.99994 measured on an AVX2 EPYC, far above int8 vs fp32 (below).
        expect(embeddingAgreement(fromShipped, await calibrated.embed(shots)).minCosine).toBeGreaterThan(
          same ? 0.9999999 : 0.9999,
        );
        expect(embeddingAgreement(fromShipped, await fp32.embed(shots)).minCosine).toBeGreaterThan(0.999);
      } finally {
        await Promise.all([shipped.dispose(), calibrated.dispose(), fp32.dispose()]);
      }
    }, 120_000);

    it('do not exist for InceptionResnetV1, which asks for calibration faces before pulling its weights', async () => {
      // Offline, with no weights anywhere: the calibration error comes first, not the download's.
      await expect(
        OnnxInceptionResnetV1Embedder.load(store, 'vggface2', { intraOpNumThreads: 1, precision: 'int8' }),
      ).rejects.toThrow(/precision "int8" calibrates on face images: set FACEREC_CALIBRATION_DIR/);
    });

    it('are not used for other weights or another graph layout: those need calibration faces', async () => {
      const other = { ranges: FACEAPI_RESNET_INT8_RANGES, graphVersion: FACEAPI_RESNET_GRAPH_LAYOUT };
      await expect(
        int8Calibration('test', undefined, 150, { ...other, weightsSha256: 'f'.repeat(64) }),
      ).rejects.toThrow(/set FACEREC_CALIBRATION_DIR .*; the int8 ranges that ship are for other weights$/);
      await expect(
        int8Calibration('test', undefined, 150, {
          ...other,
          weightsSha256: FACEAPI_RESNET_INT8_RANGES.weightsSha256,
          graphVersion: 'v0.0',
        }),
      ).rejects.toThrow(
        `set FACEREC_CALIBRATION_DIR to a folder of face crops (a few dozen, of the kind the embedder will see); the int8 ranges that ship are for graph layout ${FACEAPI_RESNET_GRAPH_LAYOUT}, not v0.0 (scripts/int8-ranges.ts measures them again)`,
      );
    });
  },
);
