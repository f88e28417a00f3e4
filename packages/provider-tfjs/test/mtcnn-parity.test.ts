import {
  describeWithSharedData,
  type MtcnnReferenceImage,
  mtcnnParityTests,
} from '@facerec/framework/testing';
import { createTfjsProvider, type TfjsBackendName } from '@facerec/provider-tfjs';
import { describeOnBackend, mirrorStore, quiet, TEST_BACKENDS } from './helpers.js';

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
  mtcnnParityTests({
    label: `tfjs ${backend}`,
    create: async () =>
      createTfjsProvider({
        backend: backend as TfjsBackendName,
        modelStore: await mirrorStore(),
        logger: quiet,
      }).detector('mtcnn'),
    images: IMAGE_FILTER[backend],
    timeout: 1_200_000,
  });
}

describeWithSharedData(
  'tfjs MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    for (const backend of TEST_BACKENDS) describeOnBackend(backend, 'parity', () => parity(backend));
  },
);
