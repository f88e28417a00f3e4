import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string, file = 'index.ts') =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url));

/** Every test file in the repository, whichever project runs it. */
export const TEST_FILES = [
  'packages/*/src/**/*.test.ts',
  'packages/*/test/**/*.test.ts',
  'examples/*/test/**/*.test.ts',
];
const EXCLUDED = ['**/node_modules/**', '**/dist/**'];

/**
 * The slow suites (`npm run test:parity`): networks with real or reference weights checked against
 * facenet-pytorch's and face-api.js's outputs, on every backend, and recognition end to end. Mostly the
 * pure-JavaScript tfjs backends, which take minutes. Everything else is the fast default (`npm test`).
 */
export const PARITY_FILES = [
  // MTCNN parity with facenet-pytorch (reference/mtcnn.json).
  'packages/provider-onnx/test/mtcnn-parity.test.ts',
  'packages/provider-tfjs/test/mtcnn-parity.test.ts',
  // InceptionResnetV1 parity with facenet-pytorch (reference/inception_resnet_v1_synthetic.json).
  'packages/provider-onnx/src/graph/inception-resnet-v1.test.ts',
  'packages/provider-onnx/test/irv1-embedder.test.ts',
  // int8 (QDQ) embedders against their fp32 graphs.
  'packages/provider-onnx/test/int8-embedder.test.ts',
  'packages/provider-tfjs/test/inception-resnet-v1-parity.test.ts',
  // face-api.js parity (reference/face-api.js).
  'packages/provider-onnx/test/faceapi-embedder.test.ts',
  'packages/provider-tfjs/test/faceapi.test.ts',
  // tfjs: the conformance suites and cross-runtime agreement on every backend, 100-call leak check.
  'packages/provider-tfjs/test/conformance.test.ts',
  'packages/provider-tfjs/test/cross-runtime.test.ts',
  'packages/provider-tfjs/test/memory.test.ts',
  // Recognition end to end: MTCNN + face-api embedder on the bbt identities.
  'packages/provider-onnx/test/bbt-recognition.test.ts',
];

// Tests import workspace packages from their TypeScript sources, so `npm test` needs no build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@facerec\/framework\/testing$/, replacement: src('framework', 'testing/index.ts') },
      { find: /^@facerec\/framework\/registry$/, replacement: src('framework', 'registry/index.ts') },
      { find: /^@facerec\/framework\/internal$/, replacement: src('framework', 'internal.ts') },
      { find: /^@facerec\/framework$/, replacement: src('framework') },
      { find: /^@facerec\/provider-onnx$/, replacement: src('provider-onnx') },
      { find: /^@facerec\/provider-tfjs$/, replacement: src('provider-tfjs') },
      { find: /^@facerec\/transport-memory$/, replacement: src('transport-memory') },
      { find: /^@facerec\/transport-sqs$/, replacement: src('transport-sqs') },
      { find: /^@facerec\/gallery-postgres$/, replacement: src('gallery-postgres') },
      { find: /^@facerec\/gallery-s3$/, replacement: src('gallery-s3') },
      { find: /^@facerec\/lambda-runtime$/, replacement: src('lambda-runtime') },
      { find: /^@facerec\/cdk$/, replacement: src('cdk') },
      { find: /^@facerec\/cli$/, replacement: src('cli') },
    ],
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One temporary folder per run, removed at its end (see the script).
    globalSetup: ['./scripts/test-tmpdir.ts'],
    // `npm test` runs `unit`, `npm run test:parity` runs `parity`; `scripts/check-test-split.ts` (run by CI)
    // fails when a test file is in neither project or in both.
    projects: [
      { extends: true, test: { name: 'unit', include: TEST_FILES, exclude: [...EXCLUDED, ...PARITY_FILES] } },
      { extends: true, test: { name: 'parity', include: PARITY_FILES, exclude: EXCLUDED } },
    ],
  },
});
