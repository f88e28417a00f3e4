import type { FaceDetector } from '@facerec/framework';
import {
  describeWithSharedData,
  expectMtcnnParity,
  formatMtcnnParity,
  type MtcnnReferenceImage,
  mtcnnParityReport,
  readMtcnnReference,
} from '@facerec/framework/testing';
import { createTfjsProvider, type TfjsBackendName } from '@facerec/provider-tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeFace, describeOnBackend, mirrorStore, quiet, TEST_BACKENDS } from './helpers.js';

/**
 * Which reference images each backend checks. `wasm` checks every image. The pure-JavaScript `cpu` backend
 * needs about 20 s per megapixel on a busy 2-core machine, so it checks every image under one megapixel:
 * all but the four facenet-pytorch portraits (1.8–4.1 Mpx) and bbt1.jpg (1.05 Mpx), i.e. 40 of 45 images
 * and 57 of 67 faces, still including four group photos and white.png. The full set would take over five
 * minutes there (the subset about 75 s); the networks are the same on both backends. With
 * `FACEREC_FULL_PARITY=1` (set by CI) the cpu backend checks every image too.
 */
const IMAGE_FILTER: Record<(typeof TEST_BACKENDS)[number], (ref: MtcnnReferenceImage) => boolean> = {
  wasm: () => true,
  cpu: (ref) => process.env.FACEREC_FULL_PARITY === '1' || ref.width * ref.height < 1_000_000,
};

function parity(backend: (typeof TEST_BACKENDS)[number]): void {
  let detector: FaceDetector;
  let reference: MtcnnReferenceImage[];

  beforeAll(async () => {
    const provider = createTfjsProvider({
      backend: backend as TfjsBackendName,
      modelStore: await mirrorStore(),
      logger: quiet,
    });
    detector = provider.detector('mtcnn');
    await detector.ready();
    reference = (await readMtcnnReference()).filter(IMAGE_FILTER[backend]);
  });
  afterAll(() => detector?.dispose());

  it('matches every reference face and finds no others', { timeout: 1_200_000 }, async () => {
    const started = performance.now();
    const report = await mtcnnParityReport(detector, reference);
    console.log(
      `${formatMtcnnParity(`tfjs ${backend}`, report)} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    expectMtcnnParity(report);
  });

  it('finds no face in white.png', async () => {
    expect(await detector.detect(await decodeFace('face-api.js', 'test', 'white.png'))).toEqual([]);
  });
}

describeWithSharedData(
  'tfjs MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    for (const backend of TEST_BACKENDS) describeOnBackend(backend, 'parity', () => parity(backend));
  },
);
