import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FaceDetector, FaceEmbedder, RgbImage } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createTfjsProvider } from '@facerec/provider-tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from './fixtures/synthetic-checkpoint.js';
import { decodeFace, describeOnBackend, mirrorStore, quiet } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';
const CALLS = 100;

/**
 * Every intermediate tensor must be freed: tfjs never garbage-collects tensors, so a single leaked tensor per
 * call grows a long-lived Lambda container until it dies. Runs on `wasm` (100 calls take ~20 s there;
 * the disposal code is the same for every backend).
 */
describeWithSharedData('tfjs tensors stay flat', ['models/upstream/pnet.pt', 'faces', REFERENCE], () => {
  describeOnBackend('wasm', 'memory', () => {
    let work: string;
    let detector: FaceDetector;
    let embedder: FaceEmbedder;
    let images: RgbImage[];

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-tfjs-memory-'));
      const checkpoint = await writeSyntheticCheckpoint(
        sharedPath(REFERENCE),
        path.join(work, 'synthetic.pt'),
      );
      const provider = createTfjsProvider({
        backend: 'wasm',
        modelStore: await mirrorStore(),
        logger: quiet,
      });
      detector = provider.detector('mtcnn');
      embedder = await provider.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 2 });
      await detector.ready();
      // Faces of different sizes and counts, so every stage runs with varying shapes (and an empty R-Net).
      images = [
        await decodeFace('face-api.js', 'bbt', 'amy', 'amy1.png'),
        await decodeFace('face-api.js', 'test', 'white.png'),
        await decodeFace('face-api.js', 'bbt3.jpg'),
        await decodeFace('face-api.js', 'test', 'face_rectangular.png'),
      ];
    });
    afterAll(async () => {
      await detector?.dispose();
      await embedder?.dispose();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it(`over ${CALLS} detect + embed calls`, { timeout: 600_000 }, async () => {
      const loaded = tf.memory();
      let faces = 0;
      for (let i = 0; i < CALLS; i++) {
        const [found] = await detector.detectFaces([images[i % images.length]!], {
          crop: embedder.preprocessing.crop,
        });
        const crops = found!.crops.slice(0, 3).map((c) => c.image);
        faces += crops.length;
        await embedder.embed(crops);
        if (i === 0) expect(tf.memory().numTensors).toBe(loaded.numTensors);
      }
      const after = tf.memory();
      console.log(
        `tfjs wasm after ${CALLS} detect + embed calls (${faces} faces): ${after.numTensors} tensors ` +
          `(${loaded.numTensors} after loading), ${(after.numBytes / 2 ** 20).toFixed(1)} MiB in tensors`,
      );
      expect(faces).toBeGreaterThan(CALLS);
      expect(after.numTensors).toBe(loaded.numTensors);
      expect(after.numBytes).toBe(loaded.numBytes);
    });
  });
});
