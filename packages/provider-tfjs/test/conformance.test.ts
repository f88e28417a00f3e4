import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeImage, type RgbImage } from '@facerec/framework';
import {
  describeDetectorConformance,
  describeEmbedderConformance,
  describeWithSharedData,
  readSyntheticReference,
  referenceBoxes,
  sharedPath,
} from '@facerec/framework/testing';
import { createTfjsProvider } from '@facerec/provider-tfjs';
import { afterAll, beforeAll, vi } from 'vitest';
import { writeSyntheticCheckpoint } from './fixtures/synthetic-checkpoint.js';
import { decodeFace, describeOnBackend, mirrorStore, quiet, TEST_BACKENDS } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';

// The suites' tests take the default 60 s timeout; the cpu backend on a busy 2-core machine needs more.
vi.setConfig({ testTimeout: 240_000 });

/**
 * Per backend: the images the detector suite uses and the crops the embedder suite embeds. The suites run
 * every image several times; on the pure-JavaScript `cpu` backend (about 20 s per megapixel, 6 s per
 * embedded face here) they use smaller inputs, still of three different sizes, and two crops.
 */
const INPUTS = {
  wasm: {
    images: [
      ['face-api.js', 'bbt3.jpg'],
      ['facenet-pytorch', 'multiface.jpg'],
      ['face-api.js', 'bbt', 'amy', 'amy1.png'],
    ],
    crops: [0, 10, 20, 40, 60],
  },
  cpu: {
    images: [
      ['face-api.js', 'bbt3.jpg'],
      ['face-api.js', 'test', 'face_rectangular.png'],
      ['face-api.js', 'bbt', 'amy', 'amy1.png'],
    ],
    crops: [0, 40],
  },
} as const;

describeWithSharedData(
  'tfjs provider conformance',
  ['models/upstream/pnet.pt', 'faces', REFERENCE, 'reference/crops'],
  () => {
    let work: string;
    let checkpoint: string;
    let crops: RgbImage[];

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-tfjs-conformance-'));
      checkpoint = await writeSyntheticCheckpoint(sharedPath(REFERENCE), path.join(work, 'synthetic.pt'));
      const reference = await readSyntheticReference(sharedPath(REFERENCE));
      crops = await Promise.all(
        reference.embeddings.map(async (e) =>
          decodeImage(await readFile(sharedPath('reference', e.cropPng))),
        ),
      );
    });
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    for (const backend of TEST_BACKENDS) {
      describeOnBackend(backend, 'tfjs', () => {
        const provider = async () =>
          createTfjsProvider({ backend, modelStore: await mirrorStore(), logger: quiet });
        const inputs = INPUTS[backend];

        describeDetectorConformance({
          name: `tfjs ${backend} mtcnn`,
          create: async () => (await provider()).detector('mtcnn'),
          imagesWithFaces: () => Promise.all(inputs.images.map((parts) => decodeFace(...parts))),
          imageWithoutFaces: () => decodeFace('face-api.js', 'test', 'white.png'),
          // facenet-pytorch's boxes for the same images.
          expectedFaces: () => referenceBoxes(inputs.images.map((parts) => parts.join('/'))),
          // R-Net and O-Net rows are independent, but the backends may tile a batch differently from a
          // single crop, which moves results by float32 rounding only.
          tolerance: 1e-4,
        });

        describeEmbedderConformance({
          name: `tfjs ${backend} inception-resnet-v1 (synthetic checkpoint)`,
          // maxBatchSize smaller than the suite's batches, so they are split into uneven chunks.
          create: async () =>
            (await provider()).embedder('inception-resnet-v1', {
              weights: checkpoint,
              maxBatchSize: backend === 'cpu' ? 1 : 2,
            }),
          faces: () => inputs.crops.map((i) => crops[i]!),
        });
      });
    }
  },
);
