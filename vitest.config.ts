import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string, file = 'index.ts') =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url));

// Tests import workspace packages from their TypeScript sources, so `npm test` needs no build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@facerec\/framework\/testing$/, replacement: src('framework', 'testing/index.ts') },
      { find: /^@facerec\/framework$/, replacement: src('framework') },
      { find: /^@facerec\/provider-onnx$/, replacement: src('provider-onnx') },
      { find: /^@facerec\/provider-tfjs$/, replacement: src('provider-tfjs') },
      { find: /^@facerec\/transport-sqs$/, replacement: src('transport-sqs') },
      { find: /^@facerec\/lambda-runtime$/, replacement: src('lambda-runtime') },
      { find: /^@facerec\/cdk$/, replacement: src('cdk') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
